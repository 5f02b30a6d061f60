/**
 * AttachedDisk: a file or block device hot-plugged with attach-device (attach-disk cannot set io),
 * detached on delete only once the guest has released it.
 */
import type { AttachedDiskInputs, AttachedDiskOutputs, DiskBus } from "../contract";
import { COLD_PLUG_BUSES, nextFreeTarget, targetFitsBus } from "../device-targets";
import { inDomainBatch } from "../batch/domain-batch";
import { ChangeOrder } from "../batch/round";
import { applySettled } from "../batch/settled";
import { InputError, VirshError } from "../errors";
import { blkdeviotuneFlags, ioTuneOfDisk, ioTuneProblem, ioTuneXmlValues, parseBlkdeviotune, sameIoTune } from "../disk-iotune";
import type { DiskIoTune } from "../contract";
import { sourceKindOnHost } from "../host-checks";
import { ATTACHED_DISK_RULES } from "../rules/attached-disk-rules";
import { domainKey } from "../session";
import { isAbsolutePath, isBoolean, isSerial, isText, integerAtLeast, oneOf, placementChecks } from "../validation";
import type { DomainSnapshot } from "../virsh/domain-snapshot";
import type { Probe } from "../virsh/probes";
import type { Command, Virsh } from "../virsh/virsh";
import { buildDiskXml, diskSourcePath, DiskValues } from "../xml/disk-xml";
import { toDynamicProvider } from "./provider-kit";
import { diskAt, readHotPlugged, usedTargets } from "./device-lookup";
import { detachAndWait } from "./device-removal";
import { explainPartialAttach, missingHalves, Presence } from "./partial-attach";

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

function outputsFrom(inputs: AttachedDiskInputs, target: string, snapshot: DomainSnapshot): AttachedDiskOutputs {
    const live = diskAt(snapshot, "live", target);
    const config = diskAt(snapshot, "config", target);
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
    if (inputs.target === undefined || inputs.target === target) return target;
    throw new InputError(`source ${inputs.source} is already attached as ${target}`,
        virsh.context(`disk ${target}`), `detach it first (virsh detach-disk ${virsh.domain} ${target} --persistent), or manage it with target "${target}"`);
}

function presenceOf(target: string): Presence {
    return (snapshot, where) => diskAt(snapshot, where, target) !== undefined;
}

/** One read (the domain and what the source is), one exec that attaches and reads back. */
function create(inputs: AttachedDiskInputs): Promise<{ id: string; outs: AttachedDiskOutputs }> {
    const bus = inputs.bus ?? "virtio";
    const sourceProbe: Probe = { kind: "path", path: inputs.source };
    return inDomainBatch(inputs, async (session) => {
        const { virsh } = session;
        const read = await session.round({ probes: [sourceProbe] });
        const before = read.snapshot();
        if (before.running && COLD_PLUG_BUSES.has(bus)) {
            throw new InputError(`bus ${bus} cannot be hot-plugged into a running domain`, virsh.context(`disk on ${bus}`),
                `use bus "virtio" or "scsi", or shut the domain off first`);
        }
        const sourceType = sourceKindOnHost(virsh, read.probe(sourceProbe), inputs.source, "source");
        if (inputs.sourceType && inputs.sourceType !== sourceType) {
            throw new InputError(`source ${inputs.source} is a ${sourceType === "file" ? "regular file" : "block device"}, not a ${inputs.sourceType === "file" ? "regular file" : "block device"}`,
                virsh.context("source"), `set sourceType to "${sourceType}" or leave it unset to detect it`);
        }
        const target = alreadyAttached(virsh, inputs, before) ?? chooseTarget(virsh, inputs, before, bus, session.claimed);
        session.claimed.add(target);
        const label = `disk ${target}`;
        const present = presenceOf(target);
        const flags = missingHalves(before, present);
        let after = before;
        if (flags.length > 0) {
            const request = {
                steps: [{ args: ["attach-device", `--domain=${virsh.domain}`, "--file=/dev/stdin", ...flags], stdin: diskXmlFor(inputs, target, sourceType) }],
                order: ChangeOrder.Addition,
            };
            const round = await applySettled(session, request, (s) => missingHalves(s, present).length === 0);
            after = round.snapshot();
            const failure = round.failure(request, { device: label });
            if (failure) throw explainPartialAttach(failure, label, after, present);
        }
        const outs = outputsFrom(inputs, target, after);
        if (!outs.attachedConfig || (after.running && !outs.attachedLive)) {
            throw new VirshError(`virsh reported success but ${label} is not in the ${outs.attachedConfig ? "live XML" : "persistent config"}`,
                virsh.context(label), "run pulumi refresh, then pulumi up again", 1);
        }
        if (flags.length > 0 && !sameIoTune(outs.iotune, inputs.iotune)) {
            throw new VirshError(`virsh reported success but ${label} has I/O limits ${JSON.stringify(outs.iotune ?? {})}, not ${JSON.stringify(inputs.iotune ?? {})}`,
                virsh.context(label), "run pulumi refresh, then pulumi up again", 1);
        }
        return { id: `${domainKey(inputs)}#disk/${target}`, outs };
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
 * A live change of an attached disk, the same target throughout: its I/O limits. One read (the
 * domain), one exec with the changes and the read back (XML and blkdeviotune).
 */
function update(olds: AttachedDiskOutputs, news: AttachedDiskInputs): Promise<AttachedDiskOutputs> {
    const target = olds.target;
    const label = `disk ${target}`;
    const stored = { ...olds, ...news, target, sourceType: olds.sourceType, bus: olds.bus, format: olds.format };
    if (sameIoTune(olds.iotune, news.iotune)) return Promise.resolve({ ...stored, iotune: olds.iotune });
    const qemuLimits: Probe = { kind: "blkdeviotune", device: target };
    return inDomainBatch(news, async (session) => {
        const { virsh } = session;
        const before = (await session.round({})).snapshot();
        if (!diskAt(before, "config", target) && !diskAt(before, "live", target)) {
            throw new VirshError(`${label} is no longer attached`, virsh.context(label), "run pulumi refresh (the next pulumi up attaches it again)", 1);
        }
        const steps: Command[] = [{ args: ["blkdeviotune", `--domain=${virsh.domain}`, `--device=${target}`, ...blkdeviotuneFlags(news.iotune),
            ...(before.running ? ["--live", "--config"] : ["--config"])] }];
        const request = { steps, probes: before.running ? [qemuLimits] : [], order: ChangeOrder.Resize };
        const round = await applySettled(session, request, (s) => ioTuneMismatches(s, target, undefined, news.iotune)
            .filter((m) => !m.startsWith("blkdeviotune")).length === 0);
        const failure = round.failure(request, { device: label });
        if (failure) throw failure;
        const after = round.snapshot();
        const answer = round.probe(qemuLimits);
        const qemu = answer.ran ? parseBlkdeviotune(answer.stdout) : undefined;
        const mismatches = ioTuneMismatches(after, target, qemu, news.iotune);
        if (mismatches.length > 0) {
            throw new VirshError(`virsh reported success but the I/O limits of ${label} are not ${JSON.stringify(news.iotune ?? {})}: ${mismatches.join("; ")}`,
                virsh.context(label), "run pulumi refresh to see the real values, then pulumi up again", 1);
        }
        return { ...outputsFrom(stored, target, after) };
    });
}

export const attachedDiskProvider = toDynamicProvider<AttachedDiskInputs, AttachedDiskOutputs>({
    table: ATTACHED_DISK_RULES,
    checks: (inputs) => placementChecks(inputs as unknown as Record<string, unknown>)
        .field("source", isAbsolutePath, true)
        .field("sourceType", oneOf("file", "block"))
        .field("target", isText)
        .field("bus", oneOf("virtio", "scsi", "sata", "ide"))
        .field("format", oneOf("raw", "qcow2"))
        .field("cache", oneOf("none", "writethrough", "writeback", "directsync", "unsafe", "default"))
        .field("io", oneOf("native", "threads"))
        .field("readonly", isBoolean)
        .field("serial", isSerial)
        .field("iotune", ioTuneProblem)
        .field("detachTimeout", integerAtLeast(1))
        .failures,
    wasRunning: () => true,
    create,
    read: (_id, olds) => readHotPlugged(olds, (snapshot) => outputsFrom(olds, olds.target, snapshot)),
    update: (_id, olds, news) => update(olds, news),
    delete: async (_id, olds) => {
        await inDomainBatch(olds, (session) => detachAndWait(session, {
            label: `disk ${olds.target}`,
            present: presenceOf(olds.target),
            detachArgs: ["detach-disk", `--domain=${olds.domain}`, `--target=${olds.target}`],
        }, olds.detachTimeout));
    },
});
