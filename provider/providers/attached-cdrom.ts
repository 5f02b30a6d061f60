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
import { buildDiskXml, diskSourcePath, DiskValues } from "../xml/disk-xml";
import { attachFlags, diskAt, diskOfKindAt, readForRefresh, usedTargets } from "./device-lookup";
import { CDROM_DRIVE, refuseStranger, warnOfStranger } from "./device-stranger";
import { DeviceLookup, detachAndWait, domainUnlessGone, removeDevice } from "./device-removal";
import { attachMissingHalves, replugOrRestore, rollBackPartialAttach } from "./partial-attach";
import { toDynamicProvider } from "./provider-kit";

type MediaChange = "inserted" | "swapped" | "ejected" | "unchanged" | "attached" | "reattached";

function cdromXml(target: string, bus: DiskBus, source: string | undefined): string {
    return buildDiskXml({ sourceType: "file", device: "cdrom", driverName: "qemu", format: "raw", file: source, target, bus, readonly: true });
}

/** The CD-ROM drive at the target in that half: a data disk put there is not ours (its source is no media). */
function cdromAt(snapshot: DomainSnapshot, where: "live" | "config", target: string): DiskValues | undefined {
    return diskOfKindAt(snapshot, where, target, "cdrom");
}

/** The media the guest sees (the config's while shut off); the other half's where that one lacks the drive (removed by hand). */
function mediaIn(snapshot: DomainSnapshot, target: string): string | undefined {
    const drive = cdromAt(snapshot, snapshot.running ? "live" : "config", target) ?? cdromAt(snapshot, "config", target);
    return drive ? diskSourcePath(drive) : undefined;
}

/** Inserts, swaps or ejects media with change-media: what it did and the domain after, or why libvirt refused. */
async function changeMedia(session: DomainSession, snapshot: DomainSnapshot, target: string, source: string | undefined): Promise<{ change: MediaChange; after: DomainSnapshot } | VirshError> {
    refuseStranger(session.virsh, snapshot, target, CDROM_DRIVE);
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
    return {
        ...inputs, source: mediaIn(snapshot, target), target, bus, ownsDrive, lastMediaChange,
        attachedLive: cdromAt(snapshot, "live", target) !== undefined,
        attachedConfig: cdromAt(snapshot, "config", target) !== undefined,
        domainRunning: snapshot.running,
    };
}

function mediaProblem(virsh: Virsh, snapshot: DomainSnapshot, target: string, source: string | undefined): VirshError | undefined {
    const where: Array<"live" | "config"> = snapshot.running ? ["live", "config"] : ["config"];
    for (const place of where) {
        const drive = cdromAt(snapshot, place, target);
        const media = drive ? diskSourcePath(drive) : undefined;
        if (!drive || media !== source) {
            return new VirshError(`virsh reported success but the ${place} drive ${target} holds ${drive ? media ?? "no media" : "no drive"}, expected ${source ?? "no media"}`,
                virsh.context(`cdrom ${target}`), "run pulumi refresh, then pulumi up again", 1);
        }
    }
    return undefined;
}

function verifyMedia(virsh: Virsh, snapshot: DomainSnapshot, target: string, source: string | undefined): void {
    const problem = mediaProblem(virsh, snapshot, target, source);
    if (problem) throw problem;
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
        const after = await hotPlug(session, { domain: inputs.domain, target, detachTimeout: inputs.detachTimeout }, bus, inputs.source, before);
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

function driveLookup(place: { domain: string; target: string }): DeviceLookup {
    return {
        label: `cdrom ${place.target}`,
        present: (snapshot, where) => cdromAt(snapshot, where, place.target) !== undefined,
        owned: { target: place.target, owner: CDROM_DRIVE },
        detachArgs: ["detach-disk", `--domain=${place.domain}`, `--target=${place.target}`],
    };
}

/**
 * Hot-plugs the drive; a failure after part of it landed detaches that part again (a rerun would
 * choose the next free target and leave this drive behind).
 */
async function hotPlug(session: DomainSession, place: { domain: string; target: string; detachTimeout?: number }, bus: DiskBus, source: string | undefined,
    before: DomainSnapshot): Promise<DomainSnapshot> {
    const { target } = place;
    const landed = (s: DomainSnapshot) => cdromAt(s, "config", target) !== undefined && (!s.running || cdromAt(s, "live", target) !== undefined);
    const request = {
        steps: [{ args: ["attach-device", `--domain=${session.virsh.domain}`, "--file=/dev/stdin", ...attachFlags(before)], stdin: cdromXml(target, bus, source) }],
        order: ChangeOrder.Addition,
    };
    const round = await applySettled(session, request, landed);
    const after = round.snapshot();
    const problem = round.failure(request, { device: `cdrom ${target}` }) ?? mediaProblem(session.virsh, after, target, source);
    if (problem) {
        throw await rollBackPartialAttach(session, problem, driveLookup(place), after,
            `to manage it, give this resource target "${target}" (it then manages only the media)`, place.detachTimeout);
    }
    return after;
}

function update(olds: AttachedCdromOutputs, news: AttachedCdromInputs): Promise<AttachedCdromOutputs> {
    return inDomainBatch(news, async (session) => {
        const { virsh } = session;
        const found = await readWithIso(session, news.source);
        refuseStranger(virsh, found, olds.target, CDROM_DRIVE);
        // A half of our drive removed by hand comes back first, with the media the other half holds.
        const before = olds.ownsDrive
            ? await attachMissingHalves(session, found, { ...driveLookup(olds), xml: cdromXml(olds.target, olds.bus, mediaIn(found, olds.target)) })
            : found;
        const changed = await changeMedia(session, before, olds.target, news.source);
        let change: MediaChange;
        let after: DomainSnapshot;
        if (changed instanceof VirshError) {
            if (!olds.ownsDrive) throw changed;
            // A hot-plugged SCSI drive refuses change-media ("Tray … is not open"): re-attach it with the new ISO.
            const oldMedia = mediaIn(before, olds.target);
            const detached = await detachAndWait(session, driveLookup(olds), olds.detachTimeout);
            after = await replugOrRestore({
                label: `cdrom ${olds.target}`,
                attachNew: () => hotPlug(session, olds, olds.bus, news.source, detached),
                restoreOld: () => hotPlug(session, olds, olds.bus, oldMedia, detached),
                asBefore: `with ${oldMedia ?? "no media"}`,
                getBack: `run pulumi up again (it attaches drive ${olds.target} on ${olds.bus} once the media can be read), or by hand: ` +
                    `virsh attach-disk ${virsh.domain} ${oldMedia ?? "''"} ${olds.target} --type cdrom --targetbus ${olds.bus} --mode readonly --live --config`,
            });
            change = "reattached";
        } else {
            ({ change, after } = changed);
        }
        verifyMedia(virsh, after, olds.target, news.source);
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
        if (!snapshot) return undefined;
        const outs = outputsFrom(olds, olds.target, olds.bus, olds.ownsDrive, olds.lastMediaChange as MediaChange, snapshot);
        // Our drive is there while either half has it (a missing half is drift); a drive the domain had, where the guest sees it.
        const there = olds.ownsDrive ? outs.attachedLive || outs.attachedConfig : cdromAt(snapshot, snapshot.running ? "live" : "config", olds.target) !== undefined;
        return there ? outs : undefined;
    },
    update: (_id, olds, news) => update(olds, news),
    // Only the CD-ROM drive is detached or ejected: a device of another kind at its target stays as it is.
    delete: (_id, olds) => inDomainBatch(olds, async (session) => {
        if (olds.ownsDrive) {
            await removeDevice(session, driveLookup(olds), olds.detachTimeout);
            return;
        }
        const before = await domainUnlessGone(session, { label: `the media in cdrom ${olds.target}` });
        if (!before || await warnOfStranger(session.virsh, before, olds.target, CDROM_DRIVE, "no media is ejected")) return;
        const ejected = await changeMedia(session, before, olds.target, undefined);
        if (ejected instanceof VirshError) throw ejected;
    }),
});
