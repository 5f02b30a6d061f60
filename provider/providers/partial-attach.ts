/**
 * libvirt applies an attach to the running domain first and writes the persistent config last,
 * so the write can fail after the device went live (read-only config, full disk), or the other
 * way round. We say exactly which half landed; a rerun adds the missing half.
 */
import { VirshError } from "../errors";
import type { DomainSnapshot } from "../virsh/domain-snapshot";

export type Presence = (snapshot: DomainSnapshot, where: "live" | "config") => boolean;

/** The attach flags still needed for the device to be in both the live domain and its config. */
export function missingHalves(snapshot: DomainSnapshot, present: Presence): string[] {
    return [
        ...(snapshot.running && !present(snapshot, "live") ? ["--live"] : []),
        ...(!present(snapshot, "config") ? ["--config"] : []),
    ];
}

/** A failed attach, saying which half landed according to the XML read right after it. */
export function explainPartialAttach(error: VirshError, label: string, after: DomainSnapshot, present: Presence): VirshError {
    const live = after.running && present(after, "live");
    const config = present(after, "config");
    if (live === config) return error;
    const landed = live ? "is attached to the running domain but not in its persistent config" : "is in the persistent config but not attached to the running domain";
    return new VirshError(`${error.summary}: ${label} ${landed}`, error.context,
        `fix what virsh reports (e.g. make the domain's config under /etc/libvirt writable), then run pulumi up again: it adds the missing half`,
        error.exitCode);
}
