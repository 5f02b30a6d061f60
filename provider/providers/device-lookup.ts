/** Finding devices in a snapshot, shared by the disk, CD-ROM and interface providers. */
import { inDomainBatch } from "../batch/domain-batch";
import type { Round } from "../batch/round";
import type { Probe } from "../virsh/probes";
import type { DomainTarget } from "../session";
import type { DomainSnapshot } from "../virsh/domain-snapshot";
import type { DiskValues } from "../xml/disk-xml";
import type { InterfaceValues } from "../xml/interface-xml";

export function diskAt(snapshot: DomainSnapshot, where: "live" | "config", target: string): DiskValues | undefined {
    return snapshot[where]?.disks.find((d) => d.target === target);
}

/** A disk's device kind: "disk", "cdrom", "floppy", "lun" (libvirt's default is "disk"). */
export function kindOf(disk: DiskValues): string {
    return String(disk.device ?? "disk");
}

/**
 * The disk at the target in that half, if it is of this kind: a data disk put by hand where a
 * CD-ROM drive was, or the other way round, is another device, never ours.
 */
export function diskOfKindAt(snapshot: DomainSnapshot, where: "live" | "config", target: string, kind: "disk" | "cdrom"): DiskValues | undefined {
    const disk = diskAt(snapshot, where, target);
    return disk && kindOf(disk) === kind ? disk : undefined;
}

export function interfaceAt(snapshot: DomainSnapshot, where: "live" | "config", mac: string): InterfaceValues | undefined {
    return snapshot[where]?.interfaces.find((i) => String(i.mac).toLowerCase() === mac.toLowerCase());
}

/** Targets taken in the live domain or its config, or claimed in this batch: a new device must avoid them all. */
export function usedTargets(snapshot: DomainSnapshot, claimed: ReadonlySet<string>): Set<string> {
    return new Set([...(snapshot.live?.disks ?? []), ...snapshot.config.disks].map((d) => String(d.target)).concat([...claimed]));
}

/** A running domain changes live and in its config; a shut-off one in its config only. */
export function attachFlags(snapshot: DomainSnapshot): string[] {
    return snapshot.running ? ["--live", "--config"] : ["--config"];
}

export const BALLOON: Probe = { kind: "balloon" };
/** The guest's own vCPU count (its agent): every refresh read asks, so any resource's read can answer for DomainResources'. */
export const GUEST_VCPUS: Probe = { kind: "guestVcpus" };

/**
 * The read of `pulumi refresh` for resource `id`: reads of one domain that arrive together share
 * one exec, and the engine's next wave (it refreshes --parallel at a time) shares it too. Every
 * resource's refresh asks the same (the domain, its balloon, the guest's vCPUs), so any can answer for the others.
 */
export function readForRefresh(id: string, target: DomainTarget, extra: Probe[] = []): Promise<Round> {
    return inDomainBatch(target, (session) => session.round({ probes: [BALLOON, GUEST_VCPUS, ...extra], refreshOf: id }));
}

/**
 * read() of a hot-plugged device, rebuilt from the XML. A device gone from both the live domain and
 * its config (or a domain gone) reads as gone, so `pulumi refresh` drops it. Reads of one domain
 * that arrive together share one read; `extra` probes (a disk's capacity) join it.
 */
export async function readHotPlugged<O extends { attachedLive: boolean; attachedConfig: boolean }>(
    id: string, olds: DomainTarget, outputsFrom: (snapshot: DomainSnapshot, round: Round) => O, extra: Probe[] = [],
): Promise<O | undefined> {
    const round = await readForRefresh(id, olds, extra);
    const snapshot = round.snapshotIfExists();
    if (!snapshot) return undefined;
    const outs = outputsFrom(snapshot, round);
    return outs.attachedLive || outs.attachedConfig ? outs : undefined;
}
