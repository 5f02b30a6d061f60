/**
 * AttachedDisk: a file or block device hot-plugged with attach-device (attach-disk cannot set io),
 * detached on delete only once the guest has released it.
 */
import { randomUUID } from "crypto";
import { warn } from "../engine-log";
import type { AttachedDiskInputs, AttachedDiskOutputs, DiskBus } from "../contract";
import { COLD_PLUG_BUSES, nextFreeTarget, targetFitsBus } from "../device-targets";
import { DomainSession, inDomainBatch } from "../batch/domain-batch";
import { ChangeOrder, Round } from "../batch/round";
import { applySettled } from "../batch/settled";
import { InputError, VirshError } from "../errors";
import { blkdeviotuneFlags, ioTuneOfDisk, ioTuneProblem, ioTuneXmlValues, parseBlkdeviotune, sameIoTune } from "../disk-iotune";
import type { DiskIoTune } from "../contract";
import { domblkCapacity, pathMissing, SourceKind, sourceKindOnHost } from "../host-checks";
import { formatBytes } from "../units";
import type { CheckFailure } from "../validation";
import { capacityProbe, createSizeProbes, planCreateSize, planResize, refusedByGuard, resizeProbes, shrinkProblem, sizeBytesOf, verifyCapacity } from "./disk-size";
import { createdIdentity, handoverPending, identityProbe, ImageOwnership, releaseImage, takeHandover } from "./disk-image-ownership";
import { heldByAnother, noteHolder, noteReleased, takeReplacement } from "./replacements";
import { ATTACHED_DISK_RULES } from "../rules/attached-disk-rules";
import { missingHalvesOf } from "../rules/device-rules";
import type { Values } from "../rules/rule-table";
import { domainKey } from "../session";
import { isAbsolutePath, isBoolean, isDiskSize, isSerial, isXmlText, integerAtLeast, oneOf, placementChecks } from "../validation";
import type { DomainSnapshot } from "../virsh/domain-snapshot";
import type { Probe } from "../virsh/probes";
import type { Command, Virsh } from "../virsh/virsh";
import { buildDiskXml, diskSourcePath, DiskValues } from "../xml/disk-xml";
import { toDynamicProvider } from "./provider-kit";
import { reformatRefusal } from "./disk-reformat";
import { moveDisk, moveFacts, MovedSource, moveTimeoutProblem, releaseMovedAway } from "./disk-move";
import { diskAt, diskOfKindAt, readHotPlugged, usedTargets } from "./device-lookup";
import { diskOn, refuseStranger } from "./device-stranger";
import { DeviceLookup, removeDevice } from "./device-removal";
import { attachMissingHalves, explainPartialAttach, missingHalves, Presence } from "./partial-attach";
import { PartialUpdate } from "./partial-update";

function diskXmlFor(inputs: AttachedDiskInputs, target: string, sourceType: "file" | "block"): string {
    return buildDiskXml({
        sourceType,
        device: "disk",
        driverName: "qemu",
        format: inputs.format ?? "raw",
        cache: inputs.cache,
        io: inputs.io,
        [sourceType === "file" ? "file" : "dev"]: inputs.source,
        target,
        bus: inputs.bus ?? "virtio",
        readonly: inputs.readonly === true,
        serial: inputs.serial,
        ...ioTuneXmlValues(inputs.iotune),
    });
}

interface DiskFacts extends ImageOwnership {
    capacityBytes: number | null;
}

function outputsFrom(inputs: AttachedDiskInputs, target: string, snapshot: DomainSnapshot, facts: DiskFacts): AttachedDiskOutputs {
    const live = diskOfKindAt(snapshot, "live", target, "disk");
    const config = diskOfKindAt(snapshot, "config", target, "disk");
    const seen: DiskValues = live ?? config ?? {};
    return {
        ...inputs,
        source: diskSourcePath(seen) ?? inputs.source,
        sourceType: seen.sourceType === "block" ? "block" : "file",
        target,
        bus: (seen.bus as DiskBus | undefined) ?? inputs.bus ?? "virtio",
        format: seen.format === "qcow2" ? "qcow2" : "raw",
        cache: (seen.cache as AttachedDiskInputs["cache"]) ?? inputs.cache,
        io: (seen.io as AttachedDiskInputs["io"]) ?? inputs.io,
        readonly: seen.readonly === true,
        serial: typeof seen.serial === "string" ? seen.serial : inputs.serial,
        iotune: ioTuneOfDisk(seen),
        attachedLive: live !== undefined,
        attachedConfig: config !== undefined,
        domainRunning: snapshot.running,
        ...facts,
    };
}

function chooseTarget(virsh: Virsh, inputs: AttachedDiskInputs, snapshot: DomainSnapshot, bus: DiskBus, claimed: ReadonlySet<string>): string {
    const used = usedTargets(snapshot, claimed);
    if (inputs.target === undefined) return nextFreeTarget(bus, used);
    if (!targetFitsBus(inputs.target, bus)) {
        throw new InputError(`target ${inputs.target} does not fit bus ${bus}`, virsh.context(`disk ${inputs.target}`),
            `use a ${bus} name such as ${nextFreeTarget(bus, used)}, or leave target unset to get the next free one`);
    }
    if (used.has(inputs.target)) {
        throw new InputError(`target ${inputs.target} is already in use`, virsh.context(`disk ${inputs.target}`),
            `pick a free name such as ${nextFreeTarget(bus, used)}, or leave target unset`);
    }
    return inputs.target;
}

/**
 * The same source already attached (a retry after a lost answer, a rerun after a half-landed
 * attach, or a disk attached by hand) is adopted instead of attached twice; under another target
 * it is refused.
 */
function alreadyAttached(virsh: Virsh, inputs: AttachedDiskInputs, snapshot: DomainSnapshot): string | undefined {
    const existing = [...(snapshot.live?.disks ?? []), ...snapshot.config.disks]
        .find((d) => d.device === "disk" && diskSourcePath(d) === inputs.source);
    if (!existing) return undefined;
    const target = String(existing.target);
    const format = existing.format === "qcow2" ? "qcow2" : "raw";
    if (format !== (inputs.format ?? "raw")) {
        // Taken over as another format, the next up would re-plug it that way: QEMU reading its bytes wrong.
        throw new InputError(`source ${inputs.source} is already attached as ${target} with format ${format}, not ${inputs.format ?? "raw"}`,
            virsh.context(`disk ${target}`), `set format: "${format}" to manage that disk, or detach it first (virsh detach-disk ${virsh.domain} ${target} --persistent)`);
    }
    if (inputs.target === undefined || inputs.target === target) return target;
    throw new InputError(`source ${inputs.source} is already attached as ${target}`,
        virsh.context(`disk ${target}`), `detach it first (virsh detach-disk ${virsh.domain} ${target} --persistent), or manage it with target "${target}"`);
}

function presenceOf(target: string, source: string): Presence {
    const { isOurs } = diskOn(source);
    return (snapshot, where) => {
        const disk = diskAt(snapshot, where, target);
        return disk !== undefined && isOurs(disk);
    };
}

/** The disk on its source at the target: another device there is never detached. */
function diskLookup(target: string, domain: string, source: string): DeviceLookup {
    return {
        label: `disk ${target}`, present: presenceOf(target, source),
        detachArgs: ["detach-disk", `--domain=${domain}`, `--target=${target}`],
        owned: { target, owner: diskOn(source) },
    };
}

/** What the path probe says the source is; "missing" only when `size` may create it. */
function sourceKind(virsh: Virsh, read: Round, inputs: AttachedDiskInputs, creatable: boolean): SourceKind | "missing" {
    const outcome = read.probe({ kind: "path", path: inputs.source });
    if (creatable && pathMissing(outcome)) return "missing";
    return sourceKindOnHost(virsh, outcome, inputs.source, "source");
}

/**
 * One read (the domain, what the source is, its size), one exec that creates or grows the image,
 * attaches it and reads back (the XML and QEMU's capacity).
 */
function create(inputs: AttachedDiskInputs): Promise<{ id: string; outs: AttachedDiskOutputs }> {
    const bus = inputs.bus ?? "virtio";
    const wantBytes = sizeBytesOf(inputs);
    const sourceProbe: Probe = { kind: "path", path: inputs.source };
    const sizeProbes = wantBytes === undefined ? [] : Object.values(createSizeProbes(inputs));
    const identity = identityProbe(inputs.source);
    return inDomainBatch(inputs, async (session) => {
        const { virsh } = session;
        const handover = handoverPending(inputs);
        const read = await session.round({ probes: [sourceProbe, ...sizeProbes, ...(handover ? [identity] : [])] });
        const before = read.snapshot();
        if (before.running && COLD_PLUG_BUSES.has(bus)) {
            throw new InputError(`bus ${bus} cannot be hot-plugged into a running domain`, virsh.context(`disk on ${bus}`),
                `use bus "virtio" or "scsi", or shut the domain off first`);
        }
        const kind = sourceKind(virsh, read, inputs, wantBytes !== undefined);
        // A re-plug of a replaced disk: the image it created is this disk's now (it is never recreated).
        const inherited = handover ? await takeHandover(virsh, inputs, read.probe(identity)) : undefined;
        const sourceType = kind === "missing" ? "file" : kind;
        if (inputs.sourceType && inputs.sourceType !== sourceType) {
            throw new InputError(kind === "missing"
                ? `source ${inputs.source} does not exist, and size creates only image files, not block devices`
                : `source ${inputs.source} is a ${sourceType === "file" ? "regular file" : "block device"}, not a ${inputs.sourceType === "file" ? "regular file" : "block device"}`,
            virsh.context("source"), kind === "missing" ? "create the block device first (e.g. lvcreate), or fix the path" : `set sourceType to "${sourceType}" or leave it unset to detect it`);
        }
        const target = alreadyAttached(virsh, inputs, before) ?? chooseTarget(virsh, inputs, before, bus, session.claimed);
        session.claimed.add(target);
        const label = `disk ${target}`;
        const present = presenceOf(target, inputs.source);
        const flags = missingHalves(before, present);
        // A disk already attached (a retry, or attached by hand) is grown like an update would.
        const sizing = wantBytes === undefined ? { steps: [], imageCreated: false }
            : flags.length > 0 ? planCreateSize(virsh, read, inputs, kind, wantBytes) : undefined;
        let after = before;
        let capacity: number | null = null;
        let imageIdentity = inherited?.imageIdentity;
        const readCapacity = capacityProbe(target);
        if (flags.length > 0 && sizing) {
            const request = {
                steps: [...sizing.steps, { args: ["attach-device", `--domain=${virsh.domain}`, "--file=/dev/stdin", ...flags], stdin: diskXmlFor(inputs, target, sourceType) }],
                probes: [...(wantBytes === undefined ? [] : [readCapacity]), ...(sizing.imageCreated ? [identity] : [])],
                order: ChangeOrder.Addition,
            };
            const round = await applySettled(session, request, (s) => missingHalves(s, present).length === 0);
            const refused = refusedByGuard(virsh, sizing, round.steps, inputs.source);
            if (refused) throw refused;
            after = round.snapshot();
            const failure = round.failure(request, { device: label });
            if (failure) throw explainPartialAttach(failure, label, after, present);
            if (sizing.imageCreated) imageIdentity = createdIdentity(virsh, inputs.source, round.probe(identity));
            capacity = wantBytes === undefined ? null : domblkCapacity(round.probe(readCapacity));
        }
        const instance = randomUUID();
        const facts = { imageCreated: (sizing?.imageCreated ?? false) || inherited !== undefined, imageIdentity, capacityBytes: capacity, instance };
        const outs = outputsFrom(inputs, target, after, facts);
        if (!outs.attachedConfig || (after.running && !outs.attachedLive)) {
            throw new VirshError(`virsh reported success but ${label} is not in the ${outs.attachedConfig ? "live XML" : "persistent config"}`,
                virsh.context(label), "run pulumi refresh, then pulumi up again", 1);
        }
        if (flags.length > 0 && !sameIoTune(outs.iotune, inputs.iotune)) {
            throw new VirshError(`virsh reported success but ${label} has I/O limits ${JSON.stringify(outs.iotune ?? {})}, not ${JSON.stringify(inputs.iotune ?? {})}`,
                virsh.context(label), "run pulumi refresh, then pulumi up again", 1);
        }
        if (flags.length > 0 && wantBytes !== undefined) verifyCapacity(virsh, label, capacity, wantBytes, sourceType === "block");
        const id = `${domainKey(inputs)}#disk/${target}`;
        // This instance holds the disk now, before its size and limits converge (a convergence that
        // fails must not let an older instance's delete, a forced replacement, take the disk away).
        noteHolder(id, instance);
        // Adopted: its size and limits converge as an update would.
        return { id, outs: flags.length > 0 ? outs : await converge(session, outs, inputs) };
    });
}

/** The I/O limits the live XML, the persistent config and QEMU (blkdeviotune) hold; each must be `want`. */
function ioTuneMismatches(snapshot: DomainSnapshot, target: string, qemu: DiskIoTune | undefined, want: DiskIoTune | undefined): string[] {
    const seen: Array<[string, DiskIoTune | undefined]> = [
        ["persistent config", ioTuneOfDisk(diskAt(snapshot, "config", target) ?? {})],
        ...(snapshot.running ? [["live XML", ioTuneOfDisk(diskAt(snapshot, "live", target) ?? {})], ["blkdeviotune", qemu]] as Array<[string, DiskIoTune | undefined]> : []),
    ];
    return seen.filter(([, got]) => !sameIoTune(got, want)).map(([where, got]) => `${where} has ${JSON.stringify(got ?? {})}`);
}

/**
 * A live change of an attached disk, the same target throughout: its size and I/O limits. One
 * read (the domain, its capacity), one exec with the changes and the read back (XML, capacity,
 * blkdeviotune).
 */
async function converge(session: DomainSession, olds: AttachedDiskOutputs, news: AttachedDiskInputs): Promise<AttachedDiskOutputs> {
    const { virsh } = session;
    const target = olds.target;
    const label = `disk ${target}`;
    const stored = { ...olds, ...news, target, sourceType: olds.sourceType, bus: olds.bus, format: olds.format };
    const wantBytes = sizeBytesOf(news);
    const limitsChange = !sameIoTune(olds.iotune, news.iotune);
    const readCapacity = capacityProbe(target);
    const facts = (capacity: number | null) => ({ imageCreated: olds.imageCreated ?? false, capacityBytes: capacity });
    const read = await session.round({ probes: wantBytes === undefined ? [] : resizeProbes(olds) });
    const found = read.snapshot();
    // Growing, limiting or re-plugging another device at the target would change that device.
    refuseStranger(virsh, found, target, diskOn(olds.source));
    if (!diskAt(found, "config", target) && !diskAt(found, "live", target)) {
        throw new VirshError(`${label} is no longer attached`, virsh.context(label), "run pulumi refresh (the next pulumi up attaches it again)", 1);
    }
    // A half removed by hand comes back first, as the other half has it, so the changes below reach both.
    const current = outputsFrom(olds, target, found, facts(null));
    const before = await attachMissingHalves(session, found, { ...diskLookup(target, olds.domain, olds.source), xml: diskXmlFor(current, target, current.sourceType) });
    // QEMU's capacity of a disk that was just plugged back live is read anew (the first read could not see it).
    const sized = wantBytes !== undefined && before !== found ? await session.round({ probes: resizeProbes(olds) }) : read;
    const qemuLimits: Probe = { kind: "blkdeviotune", device: target };
    const steps: Command[] = [
        ...(wantBytes === undefined ? [] : planResize(virsh, sized, olds, before.running, wantBytes)),
        ...(limitsChange ? [{ args: ["blkdeviotune", `--domain=${virsh.domain}`, `--device=${target}`, ...blkdeviotuneFlags(news.iotune),
            ...(before.running ? ["--live", "--config"] : ["--config"])] }] : []),
    ];
    if (steps.length === 0) return outputsFrom(stored, target, before, facts(wantBytes === undefined ? null : domblkCapacity(sized.probe(readCapacity))));
    const request = { steps, probes: [...(wantBytes === undefined ? [] : [readCapacity]), ...(before.running && limitsChange ? [qemuLimits] : [])], order: ChangeOrder.Resize };
    // A lost answer: blockresize and blkdeviotune set absolute values, so running them again is safe.
    const round = await applySettled(session, request, () => false);
    const failure = round.failure(request, { device: label });
    if (failure) throw failure;
    const after = round.snapshot();
    const capacity = wantBytes === undefined ? null : domblkCapacity(round.probe(readCapacity));
    if (wantBytes !== undefined) verifyCapacity(virsh, label, capacity, wantBytes, olds.sourceType === "block");
    if (limitsChange) {
        const answer = round.probe(qemuLimits);
        const mismatches = ioTuneMismatches(after, target, answer.ran ? parseBlkdeviotune(answer.stdout) : undefined, news.iotune);
        if (mismatches.length > 0) {
            throw new VirshError(`virsh reported success but the I/O limits of ${label} are not ${JSON.stringify(news.iotune ?? {})}: ${mismatches.join("; ")}`,
                virsh.context(label), "run pulumi refresh to see the real values, then pulumi up again", 1);
        }
    }
    return outputsFrom(stored, target, after, facts(capacity));
}

/** A move (the diff found nothing at the new source, or moveOntoExisting), then the size and limits on the new source. */
function moveThenConverge(olds: AttachedDiskOutputs, news: AttachedDiskInputs): Promise<AttachedDiskOutputs> {
    return inDomainBatch(news, async (session) => {
        const xmlFor = (disk: MovedSource) => diskXmlFor({ ...olds, source: disk.source, format: disk.format }, olds.target, disk.sourceType);
        const moved = await moveDisk(session, olds, news, xmlFor);
        const onNew = { ...olds, source: news.source, sourceType: moved.sourceType, format: moved.format };
        const outs = outputsFrom(onNew, olds.target, moved.snapshot, { imageCreated: moved.imageCreated, imageIdentity: moved.imageIdentity, capacityBytes: olds.capacityBytes });
        // From here on the disk is on the new source: a failure must not lose that (the engine stores what PartialUpdate carries).
        let stored = outs;
        try {
            stored = await converge(session, outs, news);
            await releaseMovedAway(session, olds, news);
            return stored;
        } catch (error) {
            throw new PartialUpdate(stored, `disk ${olds.target} of domain '${session.virsh.domain}' was moved to ${news.source} (the state now names it)`, error);
        }
    });
}

function update(olds: AttachedDiskOutputs, news: AttachedDiskInputs): Promise<AttachedDiskOutputs> {
    if (news.source !== olds.source) return moveThenConverge(olds, news);
    const stored = { ...olds, ...news, target: olds.target, sourceType: olds.sourceType, bus: olds.bus, format: olds.format };
    const sizeChange = news.size !== undefined && sizeBytesOf(news) !== (olds.size === undefined ? undefined : sizeBytesOf(olds));
    const halves = missingHalvesOf(olds as unknown as Values);
    if (!sizeChange && sameIoTune(olds.iotune, news.iotune) && !halves.live && !halves.config) return Promise.resolve({ ...stored, iotune: olds.iotune });
    return inDomainBatch(news, (session) => converge(session, olds, news));
}

function withShrinkRefused(olds: Partial<AttachedDiskInputs>, news: AttachedDiskInputs, failures: CheckFailure[]): CheckFailure[] {
    const shrink = failures.some((f) => f.property === "size") ? undefined : shrinkProblem(olds, news);
    return shrink ? [...failures, { property: "size", reason: `size: ${shrink}` }] : failures;
}

/** diff: a new format on the source the state names (disk-reformat.ts). */
function reformatOfStored(stored: AttachedDiskOutputs, news: AttachedDiskInputs): InputError | undefined {
    return reformatRefusal(stored, news, { host: stored.connection.host, domain: stored.domain, device: `disk ${stored.target}` });
}

/**
 * The size refresh reports: the input while QEMU's capacity is that (a block device: at least
 * that), else the capacity, so a resize made by hand shows as drift.
 */
function reportedSize(olds: AttachedDiskOutputs, capacity: number | null): AttachedDiskInputs["size"] {
    if (olds.size === undefined || capacity === null) return olds.size;
    const want = sizeBytesOf(olds) ?? 0;
    return capacity === want || (olds.sourceType === "block" && capacity > want) ? olds.size : formatBytes(capacity);
}

export const attachedDiskProvider = toDynamicProvider<AttachedDiskInputs, AttachedDiskOutputs>({
    table: ATTACHED_DISK_RULES,
    checks: (inputs, olds) => withShrinkRefused(olds, inputs, placementChecks(inputs as unknown as Record<string, unknown>)
        .field("source", isAbsolutePath, true)
        .field("sourceType", oneOf("file", "block"))
        .field("target", isXmlText)
        .field("bus", oneOf("virtio", "scsi", "sata", "ide"))
        .field("format", oneOf("raw", "qcow2"))
        .field("cache", oneOf("none", "writethrough", "writeback", "directsync", "unsafe", "default"))
        .field("io", oneOf("native", "threads"))
        .field("readonly", isBoolean)
        .field("serial", isSerial)
        .field("size", isDiskSize)
        .field("deleteImage", isBoolean)
        .field("iotune", ioTuneProblem)
        .field("detachTimeout", integerAtLeast(1))
        .field("moveOntoExisting", isBoolean)
        .field("afterMove", oneOf("keep", "delete"))
        .field("moveTimeout", moveTimeoutProblem)
        .field("copyBandwidth", integerAtLeast(1))
        .failures),
    refusedByState: reformatOfStored,
    diffFacts: moveFacts,
    wasRunning: () => true,
    create,
    read: (id, olds) => readHotPlugged(id, olds, (snapshot, round) => {
        const capacity = olds.size === undefined ? null : domblkCapacity(round.probe(capacityProbe(olds.target)));
        const outs = outputsFrom(olds, olds.target, snapshot, { imageCreated: olds.imageCreated ?? false, capacityBytes: capacity });
        return { ...outs, size: reportedSize(olds, capacity) };
    }, olds.size === undefined ? [] : [capacityProbe(olds.target)]),
    update: (_id, olds, news) => update(olds, news),
    delete: async (id, olds) => {
        const replacing = takeReplacement(id);
        if (heldByAnother(id, olds.instance)) {
            await warn(`disk ${olds.target} of domain '${olds.domain}' is left attached, its image ${olds.source} kept: a resource created in this run ` +
                "(a forced replacement, or a rename without an alias) took it over");
            return;
        }
        await inDomainBatch(olds, async (session) => {
            const removesImage = olds.deleteImage === true && olds.imageCreated === true;
            const detached = await removeDevice(session, {
                ...diskLookup(olds.target, olds.domain, olds.source),
                // Whether another domain now uses the image cannot be told from here: it stays.
                keptWhenDomainGone: removesImage ? `its image ${olds.source} is kept (deleteImage): remove it by hand if nothing uses it` : undefined,
            }, olds.detachTimeout);
            if (detached) await releaseImage(session, olds, replacing);
        });
        noteReleased(id);
    },
});
