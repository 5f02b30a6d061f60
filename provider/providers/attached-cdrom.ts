/**
 * AttachedCdrom: an ISO in a CD-ROM drive. A drive the domain already has (IDE hdc defined at boot)
 * keeps its place and only its media is managed; otherwise a drive is hot-plugged (SCSI by default)
 * and detached on delete. Media changes are live; a hot-plugged drive whose tray libvirt cannot
 * open is re-attached with the new ISO, and the output says which happened.
 */
import type { AttachedCdromInputs, AttachedCdromOutputs, DiskBus } from "../contract";
import { COLD_PLUG_BUSES, nextFreeTarget, targetFitsBus } from "../device-targets";
import { withDomainLock } from "../domain-lock";
import { InputError, VirshError } from "../errors";
import { sourceKindOnHost } from "../host-checks";
import { ATTACHED_CDROM_RULES } from "../rules/attached-cdrom-rules";
import { domainKey, virshFor } from "../session";
import { integerAtLeast, isAbsolutePath, isText, oneOf, placementChecks } from "../validation";
import { detachAndWait } from "../virsh/device-removal";
import { DomainSnapshot, readSnapshot, readSnapshotIfExists } from "../virsh/domain-snapshot";
import { runSettled } from "../virsh/unknown-outcome";
import type { Virsh } from "../virsh/virsh";
import { buildDiskXml, diskSourcePath } from "../xml/disk-xml";
import { attachFlags, diskAt, usedTargets } from "./device-lookup";
import { toDynamicProvider } from "./provider-kit";

type MediaChange = "inserted" | "swapped" | "ejected" | "unchanged" | "attached" | "reattached";

function cdromXml(target: string, bus: DiskBus, source: string | undefined): string {
    return buildDiskXml({ sourceType: "file", device: "cdrom", driverName: "qemu", format: "raw", file: source, target, bus, readonly: true });
}

function mediaIn(snapshot: DomainSnapshot, target: string): string | undefined {
    const drive = diskAt(snapshot, snapshot.running ? "live" : "config", target);
    return drive ? diskSourcePath(drive) : undefined;
}

/** Inserts, swaps or ejects media with change-media: what it did, or why libvirt refused. */
async function changeMedia(virsh: Virsh, snapshot: DomainSnapshot, target: string, source: string | undefined): Promise<MediaChange | VirshError> {
    const current = mediaIn(snapshot, target);
    if (current === source) return "unchanged";
    const change = source === undefined ? "ejected" : current === undefined ? "inserted" : "swapped";
    const action = { ejected: "--eject", inserted: "--insert", swapped: "--update" }[change];
    const args = ["change-media", `--domain=${virsh.domain}`, `--path=${target}`, action, ...(source ? [`--source=${source}`] : []), ...attachFlags(snapshot)];
    const result = await virsh.attempt(args);
    return result.exitCode === 0 ? change : virsh.failure(args, result, {
        device: `cdrom ${target}`, hint: "eject the media by hand (virsh change-media --eject), then run pulumi up again",
    });
}

function outputsFrom(inputs: AttachedCdromInputs, target: string, bus: DiskBus, ownsDrive: boolean, lastMediaChange: MediaChange, snapshot: DomainSnapshot): AttachedCdromOutputs {
    return { ...inputs, source: mediaIn(snapshot, target), target, bus, ownsDrive, lastMediaChange };
}

function verifyMedia(virsh: Virsh, snapshot: DomainSnapshot, target: string, source: string | undefined): void {
    const where: Array<"live" | "config"> = snapshot.running ? ["live", "config"] : ["config"];
    for (const place of where) {
        const drive = diskAt(snapshot, place, target);
        const media = drive ? diskSourcePath(drive) : undefined;
        if (!drive || media !== source) {
            throw new VirshError(`virsh reported success but the ${place} drive ${target} holds ${drive ? media ?? "no media" : "no drive"}, expected ${source ?? "no media"}`,
                virsh.context(`cdrom ${target}`), "run pulumi refresh, then pulumi up again", 1);
        }
    }
}

async function checkIso(virsh: Virsh, source: string | undefined): Promise<void> {
    if (source !== undefined) await sourceKindOnHost(virsh, source, "source");
}

async function create(inputs: AttachedCdromInputs): Promise<{ id: string; outs: AttachedCdromOutputs }> {
    const virsh = virshFor(inputs);
    return withDomainLock(domainKey(inputs), async () => {
        await checkIso(virsh, inputs.source);
        const before = await readSnapshot(virsh);
        const existing = inputs.target === undefined ? undefined : diskAt(before, "config", inputs.target) ?? diskAt(before, "live", inputs.target);
        if (existing && inputs.target) {
            if (existing.device !== "cdrom") {
                throw new InputError(`target ${inputs.target} is a ${existing.device ?? "disk"}, not a CD-ROM drive`, virsh.context(`disk ${inputs.target}`),
                    "name a CD-ROM drive (virsh domblklist shows them), or leave target unset to hot-plug a new drive");
            }
            const change = await changeMedia(virsh, before, inputs.target, inputs.source);
            if (change instanceof VirshError) throw change;
            const after = await readSnapshot(virsh);
            verifyMedia(virsh, after, inputs.target, inputs.source);
            const bus = (existing.bus as DiskBus | undefined) ?? "ide";
            return { id: `${domainKey(inputs)}#cdrom/${inputs.target}`, outs: outputsFrom(inputs, inputs.target, bus, false, change, after) };
        }
        const bus = inputs.bus ?? "scsi";
        const target = chooseTarget(virsh, inputs, before, bus);
        const after = await hotPlug(virsh, target, bus, inputs.source);
        return { id: `${domainKey(inputs)}#cdrom/${target}`, outs: outputsFrom(inputs, target, bus, true, "attached", after) };
    });
}

function chooseTarget(virsh: Virsh, inputs: AttachedCdromInputs, snapshot: DomainSnapshot, bus: DiskBus): string {
    if (bus === "virtio") {
        throw new InputError("a virtio target cannot hold ejectable media", virsh.context("cdrom on virtio"), `use bus "scsi" (the default)`);
    }
    if (snapshot.running && COLD_PLUG_BUSES.has(bus)) {
        throw new InputError(`bus ${bus} cannot be hot-plugged into a running domain`, virsh.context(`cdrom on ${bus}`),
            `use bus "scsi" (the default), or name an existing drive as target`);
    }
    const used = usedTargets(snapshot);
    if (inputs.target === undefined) return nextFreeTarget(bus, used);
    if (!targetFitsBus(inputs.target, bus)) {
        throw new InputError(`target ${inputs.target} does not fit bus ${bus}`, virsh.context(`cdrom ${inputs.target}`),
            `use a ${bus} name such as ${nextFreeTarget(bus, used)}, or leave target unset`);
    }
    return inputs.target;
}

async function hotPlug(virsh: Virsh, target: string, bus: DiskBus, source: string | undefined): Promise<DomainSnapshot> {
    const before = await readSnapshot(virsh);
    const landed = (s: DomainSnapshot) => diskAt(s, "config", target) !== undefined && (!s.running || diskAt(s, "live", target) !== undefined);
    await runSettled(virsh, ["attach-device", `--domain=${virsh.domain}`, "--file=/dev/stdin", ...attachFlags(before)],
        { stdin: cdromXml(target, bus, source), device: `cdrom ${target}` }, landed);
    const after = await readSnapshot(virsh);
    verifyMedia(virsh, after, target, source);
    return after;
}

function detachDrive(virsh: Virsh, olds: AttachedCdromOutputs): Promise<void> {
    return detachAndWait(virsh, {
        label: `cdrom ${olds.target}`,
        present: (snapshot, where) => diskAt(snapshot, where, olds.target) !== undefined,
        detachArgs: ["detach-disk", `--domain=${virsh.domain}`, `--target=${olds.target}`],
    }, olds.detachTimeout);
}

async function update(olds: AttachedCdromOutputs, news: AttachedCdromInputs): Promise<AttachedCdromOutputs> {
    const virsh = virshFor(news);
    return withDomainLock(domainKey(news), async () => {
        await checkIso(virsh, news.source);
        const before = await readSnapshot(virsh);
        let change = await changeMedia(virsh, before, olds.target, news.source);
        if (change instanceof VirshError) {
            if (!olds.ownsDrive) throw change;
            // A hot-plugged SCSI drive refuses change-media ("Tray … is not open"): re-attach it with the new ISO.
            await detachDrive(virsh, olds);
            await hotPlug(virsh, olds.target, olds.bus, news.source);
            change = "reattached";
        }
        const after = await readSnapshot(virsh);
        verifyMedia(virsh, after, olds.target, news.source);
        return outputsFrom(news, olds.target, olds.bus, olds.ownsDrive, change, after);
    });
}

export const attachedCdromProvider = toDynamicProvider<AttachedCdromInputs, AttachedCdromOutputs>({
    table: ATTACHED_CDROM_RULES,
    checks: (inputs) => placementChecks(inputs as unknown as Record<string, unknown>)
        .field("source", isAbsolutePath)
        .field("target", isText)
        .field("bus", oneOf("scsi", "sata", "ide", "virtio"))
        .field("detachTimeout", integerAtLeast(1))
        .failures,
    wasRunning: () => true,
    create,
    read: async (_id, olds) => {
        const virsh = virshFor(olds);
        const snapshot = await readSnapshotIfExists(virsh);
        if (!snapshot || !diskAt(snapshot, snapshot.running ? "live" : "config", olds.target)) return undefined;
        return outputsFrom(olds, olds.target, olds.bus, olds.ownsDrive, olds.lastMediaChange as MediaChange, snapshot);
    },
    update: (_id, olds, news) => update(olds, news),
    delete: async (_id, olds) => {
        const virsh = virshFor(olds);
        await withDomainLock(domainKey(olds), async () => {
            if (olds.ownsDrive) return detachDrive(virsh, olds);
            const ejected = await changeMedia(virsh, await readSnapshot(virsh), olds.target, undefined);
            if (ejected instanceof VirshError) throw ejected;
        });
    },
});
