/**
 * Which image file an AttachedDisk owns, and when that file may go. A disk that created its image
 * records the file's identity (device, inode, birth time) in the create's own exec. A replacement
 * (a re-plug: cache, io, bus, target, serial, readonly) never removes or recreates the image: its
 * delete keeps the file and hands the ownership to the create that follows on the same host for
 * the same source. Only a real destroy with `deleteImage` removes it, and only while the path
 * still holds that very file and no domain on the host names it (a disk, an overlay's base, a copy's mirror).
 */
import type { AttachedDiskInputs, AttachedDiskOutputs } from "../contract";
import type { DomainSession } from "../batch/domain-batch";
import { ChangeOrder } from "../batch/round";
import { warn } from "../engine-log";
import { domainsUsingFile, domainsUsingSameFile, fileIdentityOnHost } from "../host-checks";
import { placementOf } from "../rules/connection-rules";
import { FILE_IDENTITY_FORMAT, Probe } from "../virsh/probes";
import type { StepOutcome } from "../virsh/step-script";
import type { Command, Virsh } from "../virsh/virsh";

export interface ImageOwnership {
    imageCreated: boolean;
    /** FILE_IDENTITY_FORMAT of the created file; absent in states written before it was recorded. */
    imageIdentity?: string;
}

/** Removes the path only while it still holds the file of that identity: the compare and the rm in one host step. */
export function removeIfSameFileStep(path: string, identity: string): Command {
    return { host: true, args: ["sh", "-c", `[ "$(stat -c '${FILE_IDENTITY_FORMAT}' -- "$1")" = "$2" ] && rm -f -- "$1"`, "sh", path, identity] };
}

export function identityProbe(path: string): Probe {
    return { kind: "fileIdentity", path };
}

const DISK_SOURCES: Probe = { kind: "diskSources" };
const DOMAIN_FILES: Probe = { kind: "domainFileIdentities" };

/** Ownership handed over by a replacement's delete, by host and source, for the create that follows. */
const handedOver = new Map<string, ImageOwnership>();

function ownerKey(disk: Pick<AttachedDiskInputs, "connection" | "source">): string {
    return JSON.stringify([placementOf(disk as unknown as Record<string, unknown>), disk.source]);
}

/** Whether a replaced disk's image waits for this create (the create then reads the file's identity). */
export function handoverPending(inputs: AttachedDiskInputs): boolean {
    return handedOver.size > 0 && handedOver.has(ownerKey(inputs));
}

/**
 * The ownership this create takes over: the image the replaced disk created, if the path still
 * holds that file (`identity` is the create's read of it).
 */
export async function takeHandover(virsh: Virsh, inputs: AttachedDiskInputs, identity: StepOutcome): Promise<ImageOwnership | undefined> {
    const key = ownerKey(inputs);
    const handed = handedOver.get(key);
    if (!handed) return undefined;
    handedOver.delete(key);
    const now = fileIdentityOnHost(virsh, identity, inputs.source);
    if (handed.imageIdentity === undefined ? now !== "missing" : now === handed.imageIdentity) return handed;
    await warn(`${inputs.source} on ${virsh.host.label} is no longer the image the replaced disk created (it was ${handed.imageIdentity ?? "unrecorded"}, ` +
        `it is ${now}): this disk does not own it, and deleteImage will not remove it`);
    return undefined;
}

/** The identity of the image a create made, from the probe read in the same exec right after it. */
export function createdIdentity(virsh: Virsh, path: string, identity: StepOutcome): string | undefined {
    const now = fileIdentityOnHost(virsh, identity, path);
    return now === "missing" ? undefined : now;
}

/**
 * After the detach: the image of a disk being replaced is kept and handed over; on a real destroy
 * with deleteImage, removed only if it is still the file this disk created and no domain uses it.
 */
export async function releaseImage(session: DomainSession, olds: AttachedDiskOutputs, replacing: boolean): Promise<void> {
    if (olds.imageCreated !== true) return;
    if (replacing) {
        handedOver.set(ownerKey(olds), { imageCreated: true, imageIdentity: olds.imageIdentity });
        return;
    }
    if (olds.deleteImage !== true) return;
    const { virsh } = session;
    const where = `${olds.source} on ${virsh.host.label}`;
    const byHand = `remove it by hand once nothing needs it: \`virsh domblklist\` of each domain must not name it, then \`rm -- ${olds.source}\``;
    if (olds.imageIdentity === undefined) {
        await warn(`deleteImage kept ${where}: this disk's state was written before the provider recorded which file it created, so it cannot tell that the path still holds that file; ${byHand}`);
        return;
    }
    const identity = identityProbe(olds.source);
    const file: Probe = { kind: "sourceIdentity", path: olds.source };
    const read = await session.round({ probes: [identity, DISK_SOURCES, DOMAIN_FILES, file] });
    const now = fileIdentityOnHost(virsh, read.probe(identity), olds.source);
    if (now === "missing") return;
    if (now !== olds.imageIdentity) {
        await warn(`deleteImage kept ${where}: the path holds another file than the one this disk created (created ${olds.imageIdentity}, now ${now}); ${byHand}`);
        return;
    }
    // By path, and as the same file by any path: a disk's source, an overlay's base, a block copy's destination.
    const users = [...new Set([...domainsUsingFile(virsh, read.probe(DISK_SOURCES), olds.source),
        ...domainsUsingSameFile(virsh, read.probe(DOMAIN_FILES), read.probe(file), olds.source, "so the image is kept")])];
    if (users.length > 0) {
        await warn(`deleteImage kept ${where}: domain${users.length > 1 ? "s" : ""} ${users.map((d) => `'${d}'`).join(", ")} still use${users.length > 1 ? "" : "s"} it (a disk, or the base of an overlay); ${byHand}`);
        return;
    }
    // The identity is compared again in the rm's own step: the path may have changed since the read.
    const request = { steps: [removeIfSameFileStep(olds.source, olds.imageIdentity)], order: ChangeOrder.Removal };
    const round = await session.round(request);
    const [removal] = round.steps;
    if (removal?.ran && removal.exitCode === 1 && removal.stderr.trim() === "") {
        await warn(`deleteImage kept ${where}: the path changed to another file between the read and the removal; ${byHand}`);
        return;
    }
    const failure = round.failure(request, { device: `disk ${olds.target}`, hint: `remove ${olds.source} by hand; the disk is already detached` });
    if (failure) throw failure;
}
