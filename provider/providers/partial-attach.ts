/**
 * libvirt applies an attach to the running domain first and writes the persistent config last,
 * so the write can fail after the device went live (read-only config, full disk), or the other
 * way round. We say exactly which half landed; where a rerun finds the device again (a disk, by
 * its source) it adds the missing half, and a half missing later (removed by hand) is attached
 * again with the device's own XML. Where a rerun would not find it (a NIC whose MAC was chosen
 * here, a CD-ROM drive whose target was), the half that landed is detached again.
 */
import type { DomainSession } from "../batch/domain-batch";
import { ChangeOrder } from "../batch/round";
import { applySettled } from "../batch/settled";
import { HostUnreachableError, LibvirtLiveError, VirshError } from "../errors";
import type { DomainSnapshot } from "../virsh/domain-snapshot";
import { DeviceLookup, detachAndWait } from "./device-removal";

export type Presence = (snapshot: DomainSnapshot, where: "live" | "config") => boolean;

/** The attach flags still needed for the device to be in both the live domain and its config. */
export function missingHalves(snapshot: DomainSnapshot, present: Presence): string[] {
    return [
        ...(snapshot.running && !present(snapshot, "live") ? ["--live"] : []),
        ...(!present(snapshot, "config") ? ["--config"] : []),
    ];
}

function landedHalf(after: DomainSnapshot, present: Presence): string | undefined {
    const live = after.running && present(after, "live");
    const config = present(after, "config");
    if (live === config) return undefined;
    return live ? "is attached to the running domain but not in its persistent config" : "is in the persistent config but not attached to the running domain";
}

function exitCodeOf(error: LibvirtLiveError): number {
    return error instanceof VirshError ? error.exitCode : 1;
}

/** A failed attach, saying which half landed according to the XML read right after it. */
export function explainPartialAttach(error: VirshError, label: string, after: DomainSnapshot, present: Presence): VirshError {
    const landed = landedHalf(after, present);
    if (!landed) return error;
    return new VirshError(`${error.summary}: ${label} ${landed}`, error.context,
        `fix what virsh reports (e.g. make the domain's config under /etc/libvirt writable), then run pulumi up again: it adds the missing half`,
        error.exitCode);
}

/** A device as attach-device takes it, and how it is found and detached. */
export interface AttachableDevice extends DeviceLookup {
    xml: string;
}

/**
 * A device the last read found in one half only (removed by hand from the config or the running
 * guest): the missing half is attached with the device's own XML, the half that is there is never
 * touched. Nothing happens when no half is missing, or none is there (the device is gone). Returns
 * the domain after.
 */
export async function attachMissingHalves(session: DomainSession, before: DomainSnapshot, device: AttachableDevice): Promise<DomainSnapshot> {
    const flags = missingHalves(before, device.present);
    const halves = before.running ? 2 : 1;
    if (flags.length === 0 || flags.length === halves) return before;
    const request = {
        steps: [{ args: ["attach-device", `--domain=${session.virsh.domain}`, "--file=/dev/stdin", ...flags], stdin: device.xml }],
        order: ChangeOrder.Addition,
    };
    const round = await applySettled(session, request, (s) => missingHalves(s, device.present).length === 0);
    const after = round.snapshot();
    const failure = round.failure(request, { device: device.label });
    if (failure) throw explainPartialAttach(failure, device.label, after, device.present);
    const still = missingHalves(after, device.present);
    if (still.length > 0) {
        throw new VirshError(`virsh reported success but ${device.label} is still missing from the ${still.includes("--config") ? "persistent config" : "live XML"}`,
            session.virsh.context(device.label), "run pulumi refresh, then pulumi up again", 1);
    }
    return after;
}

/**
 * A create that failed after part of its attach landed: that part is detached again (verified),
 * so a rerun, which would not find it, leaves nothing behind. The error says so, or, when the
 * detach fails too, names what is left and how to adopt (`adopt`) or remove it.
 */
export async function rollBackPartialAttach(session: DomainSession, error: VirshError, device: DeviceLookup, after: DomainSnapshot,
    adopt: string, timeoutSeconds?: number): Promise<VirshError> {
    const landed = after.running && device.present(after, "live") ? "live" : device.present(after, "config") ? "config" : undefined;
    if (!landed) return error;
    try {
        await detachAndWait(session, device, timeoutSeconds);
    } catch (rollback) {
        if (!(rollback instanceof LibvirtLiveError)) throw rollback;
        return new VirshError(`${error.summary}; ${device.label} landed in part (${landed}) and could not be detached again: ${rollback.summary}`,
            error.context, `${adopt}; or remove it by hand (virsh ${device.detachArgs.join(" ")} --${landed})`, error.exitCode);
    }
    return new VirshError(`${error.summary}; the part of ${device.label} that landed (${landed}) was detached again: nothing is left behind`,
        error.context, error.hint, error.exitCode);
}

/**
 * A change libvirt cannot make in place: the device was detached, and is attached anew with the
 * change. When that fails, the old device is put back as it was, and the error says which of the
 * two happened, plainly: put back, or no longer on the domain (with how to get it back). An
 * outcome left unknown (the connection dropped) is reported as it is.
 */
export async function replugOrRestore<T>(plug: {
    label: string;
    attachNew: () => Promise<T>;
    restoreOld: () => Promise<unknown>;
    /** "on bridge pllbr0 with MAC …": how it was before. */
    asBefore: string;
    /** How to get it back when it is gone. */
    getBack: string;
}): Promise<T> {
    try {
        return await plug.attachNew();
    } catch (error) {
        if (!(error instanceof LibvirtLiveError) || (error instanceof HostUnreachableError && error.outcomeUnknown)) throw error;
        try {
            await plug.restoreOld();
        } catch (restore) {
            if (!(restore instanceof LibvirtLiveError)) throw restore;
            throw new VirshError(`${error.summary}. ${plug.label} is no longer on the domain: it was detached to be attached anew, ` +
                `and putting it back ${plug.asBefore} failed too: ${restore.summary}`, error.context, plug.getBack, exitCodeOf(error));
        }
        throw new VirshError(`${error.summary}. ${plug.label} was put back ${plug.asBefore}: the domain has it as before this update`,
            error.context, error.hint, exitCodeOf(error));
    }
}
