/**
 * AttachedCdrom: an ISO in a CD-ROM drive. A drive the domain already has (IDE hdc defined at boot)
 * keeps its place and only its media is managed; otherwise a drive is hot-plugged (SCSI by default)
 * and detached on delete. Media changes are live; a hot-plugged drive whose tray libvirt cannot
 * open is re-attached with the new ISO, and the output says which happened.
 */
import type { AttachedCdromInputs, AttachedCdromOutputs, DiskBus } from "../contract";
import { COLD_PLUG_BUSES, nextFreeTarget, targetFitsBus } from "../device-targets";
import { DomainSession, inDomainBatch } from "../batch/domain-batch";
import { ChangeOrder } from "../batch/round";
import { applySettled } from "../batch/settled";
import { InputError, VirshError } from "../errors";
import { sourceKindOnHost } from "../host-checks";
import { ATTACHED_CDROM_RULES } from "../rules/attached-cdrom-rules";
import { domainKey } from "../session";
import { integerAtLeast, isAbsolutePath, isXmlText, oneOf, placementChecks } from "../validation";
import type { DomainSnapshot } from "../virsh/domain-snapshot";
import type { Probe } from "../virsh/probes";
import type { Virsh } from "../virsh/virsh";
import { buildDiskXml, diskSourcePath } from "../xml/disk-xml";
import { attachFlags, diskAt, readForRefresh, usedTargets } from "./device-lookup";
import { detachAndWait } from "./device-removal";
import { toDynamicProvider } from "./provider-kit";

type MediaChange = "inserted" | "swapped" | "ejected" | "unchanged" | "attached" | "reattached";

function cdromXml(target: string, bus: DiskBus, source: string | undefined): string {
    return buildDiskXml({ sourceType: "file", device: "cdrom", driverName: "qemu", format: "raw", file: source, target, bus, readonly: true });
}

function mediaIn(snapshot: DomainSnapshot, target: string): string | undefined {
    const drive = diskAt(snapshot, snapshot.running ? "live" : "config", target);
    return drive ? diskSourcePath(drive) : undefined;
}

/** Inserts, swaps or ejects media with change-media: what it did and the domain after, or why libvirt refused. */
async function changeMedia(session: DomainSession, snapshot: DomainSnapshot, target: string, source: string | undefined): Promise<{ change: MediaChange; after: DomainSnapshot } | VirshError> {
    const current = mediaIn(snapshot, target);
    if (current === source) return { change: "unchanged", after: snapshot };
    const change = source === undefined ? "ejected" : current === undefined ? "inserted" : "swapped";
    const action = { ejected: "--eject", inserted: "--insert", swapped: "--update" }[change];
    const request = {
        steps: [{ args: ["change-media", `--domain=${session.virsh.domain}`, `--path=${target}`, action, ...(source ? [`--source=${source}`] : []), ...attachFlags(snapshot)] }],
        order: source === undefined ? ChangeOrder.Removal : ChangeOrder.Addition,
    };
    const round = await applySettled(session, request, (s) => mediaIn(s, target) === source);
    const failure = round.failure(request, {
        device: `cdrom ${target}`, hint: "eject the media by hand (virsh change-media --eject), then run pulumi up again",
    });
    return failure ?? { change, after: round.snapshot() };
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

/** The domain, read with (and after) the check that the ISO exists on the host. */
async function readWithIso(session: DomainSession, source: string | undefined): Promise<DomainSnapshot> {
    const iso: Probe | undefined = source === undefined ? undefined : { kind: "path", path: source };
    const read = await session.round({ probes: iso ? [iso] : [] });
    if (iso && source !== undefined) sourceKindOnHost(session.virsh, read.probe(iso), source, "source");
    return read.snapshot();
}

function create(inputs: AttachedCdromInputs): Promise<{ id: string; outs: AttachedCdromOutputs }> {
    return inDomainBatch(inputs, async (session) => {
        const { virsh } = session;
        const before = await readWithIso(session, inputs.source);
        const existing = inputs.target === undefined ? undefined : diskAt(before, "config", inputs.target) ?? diskAt(before, "live", inputs.target);
        if (existing && inputs.target) {
            if (existing.device !== "cdrom") {
                throw new InputError(`target ${inputs.target} is a ${existing.device ?? "disk"}, not a CD-ROM drive`, virsh.context(`disk ${inputs.target}`),
                    "name a CD-ROM drive (virsh domblklist shows them), or leave target unset to hot-plug a new drive");
            }
            const changed = await changeMedia(session, before, inputs.target, inputs.source);
            if (changed instanceof VirshError) throw changed;
            verifyMedia(virsh, changed.after, inputs.target, inputs.source);
            const bus = (existing.bus as DiskBus | undefined) ?? "ide";
            return { id: `${domainKey(inputs)}#cdrom/${inputs.target}`, outs: outputsFrom(inputs, inputs.target, bus, false, changed.change, changed.after) };
        }
        const bus = inputs.bus ?? "scsi";
        const target = chooseTarget(virsh, inputs, before, bus, session.claimed);
        session.claimed.add(target);
        const after = await hotPlug(session, target, bus, inputs.source, before);
        return { id: `${domainKey(inputs)}#cdrom/${target}`, outs: outputsFrom(inputs, target, bus, true, "attached", after) };
    });
}

function chooseTarget(virsh: Virsh, inputs: AttachedCdromInputs, snapshot: DomainSnapshot, bus: DiskBus, claimed: ReadonlySet<string>): string {
    if (bus === "virtio") {
        throw new InputError("a virtio target cannot hold ejectable media", virsh.context("cdrom on virtio"), `use bus "scsi" (the default)`);
    }
    if (snapshot.running && COLD_PLUG_BUSES.has(bus)) {
        throw new InputError(`bus ${bus} cannot be hot-plugged into a running domain`, virsh.context(`cdrom on ${bus}`),
            `use bus "scsi" (the default), or name an existing drive as target`);
    }
    const used = usedTargets(snapshot, claimed);
    if (inputs.target === undefined) return nextFreeTarget(bus, used);
    if (!targetFitsBus(inputs.target, bus)) {
        throw new InputError(`target ${inputs.target} does not fit bus ${bus}`, virsh.context(`cdrom ${inputs.target}`),
            `use a ${bus} name such as ${nextFreeTarget(bus, used)}, or leave target unset`);
    }
    return inputs.target;
}

async function hotPlug(session: DomainSession, target: string, bus: DiskBus, source: string | undefined, before: DomainSnapshot): Promise<DomainSnapshot> {
    const landed = (s: DomainSnapshot) => diskAt(s, "config", target) !== undefined && (!s.running || diskAt(s, "live", target) !== undefined);
    const request = {
        steps: [{ args: ["attach-device", `--domain=${session.virsh.domain}`, "--file=/dev/stdin", ...attachFlags(before)], stdin: cdromXml(target, bus, source) }],
        order: ChangeOrder.Addition,
    };
    const round = await applySettled(session, request, landed);
    const failure = round.failure(request, { device: `cdrom ${target}` });
    if (failure) throw failure;
    const after = round.snapshot();
    verifyMedia(session.virsh, after, target, source);
    return after;
}

function detachDrive(session: DomainSession, olds: AttachedCdromOutputs): Promise<DomainSnapshot> {
    return detachAndWait(session, {
        label: `cdrom ${olds.target}`,
        present: (snapshot, where) => diskAt(snapshot, where, olds.target) !== undefined,
        detachArgs: ["detach-disk", `--domain=${olds.domain}`, `--target=${olds.target}`],
    }, olds.detachTimeout);
}

function update(olds: AttachedCdromOutputs, news: AttachedCdromInputs): Promise<AttachedCdromOutputs> {
    return inDomainBatch(news, async (session) => {
        const before = await readWithIso(session, news.source);
        const changed = await changeMedia(session, before, olds.target, news.source);
        let change: MediaChange;
        let after: DomainSnapshot;
        if (changed instanceof VirshError) {
            if (!olds.ownsDrive) throw changed;
            // A hot-plugged SCSI drive refuses change-media ("Tray … is not open"): re-attach it with the new ISO.
            after = await hotPlug(session, olds.target, olds.bus, news.source, await detachDrive(session, olds));
            change = "reattached";
        } else {
            ({ change, after } = changed);
        }
        verifyMedia(session.virsh, after, olds.target, news.source);
        return outputsFrom(news, olds.target, olds.bus, olds.ownsDrive, change, after);
    });
}

export const attachedCdromProvider = toDynamicProvider<AttachedCdromInputs, AttachedCdromOutputs>({
    table: ATTACHED_CDROM_RULES,
    checks: (inputs) => placementChecks(inputs as unknown as Record<string, unknown>)
        .field("source", isAbsolutePath)
        .field("target", isXmlText)
        .field("bus", oneOf("scsi", "sata", "ide", "virtio"))
        .field("detachTimeout", integerAtLeast(1))
        .failures,
    wasRunning: () => true,
    create,
    read: async (id, olds) => {
        const snapshot = (await readForRefresh(id, olds)).snapshotIfExists();
        if (!snapshot || !diskAt(snapshot, snapshot.running ? "live" : "config", olds.target)) return undefined;
        return outputsFrom(olds, olds.target, olds.bus, olds.ownsDrive, olds.lastMediaChange as MediaChange, snapshot);
    },
    update: (_id, olds, news) => update(olds, news),
    delete: (_id, olds) => inDomainBatch(olds, async (session) => {
        if (olds.ownsDrive) {
            await detachDrive(session, olds);
            return;
        }
        const ejected = await changeMedia(session, (await session.round({})).snapshot(), olds.target, undefined);
        if (ejected instanceof VirshError) throw ejected;
    }),
});
