/**
 * DomainResources: memory and vCPUs of an existing domain. Live where libvirt can; otherwise the
 * reboot policy decides, and "never" (the default) fails before anything changes. A reboot comes
 * only with the replacement the preview showed (create): an update never reboots.
 */
import { createHash } from "crypto";
import type { DomainResourcesInputs, DomainResourcesOutputs } from "../contract";
import { DomainSession, inDomainBatch } from "../batch/domain-batch";
import { pollUntil } from "../batch/poll";
import { ChangeOrder, Round } from "../batch/round";
import { InputError, VirshError } from "../errors";
import { DesiredResources, memoryGrowth, pendingDifferences, planResources, ResourcePlan } from "../domain-resources-plan";
import { warn } from "../engine-log";
import { balloonView, ceilingKiB, MemorySplit, splitMemory, virtioMemOf } from "../virtio-mem";
import { virtioMemObstacle, withVirtioMemDevice } from "../xml/virtio-mem-xml";
import { balloonActualKiB, HostSize, hostSize, hypervisorMaxVcpus, cgroupV2, cpuMapOf, onlineHostCpus, qemuRssKiB } from "../host-checks";
import { managesCgroupRanges, managesPins, planTuning, refreshedTuning, Setting, tuningMismatches, tuningOf, tuningSettings } from "../domain-tuning";
import { checkTuningOnHost, tuningCheckFailures } from "../tuning-checks";
import { BALLOON_TOLERANCE_KIB } from "../virsh/probes";
import { DOMAIN_RESOURCES_RULES } from "../rules/domain-resources-rules";
import { domainKey } from "../session";
import { formatKiB, parseMemoryKiB } from "../units";
import { integerAtLeast, isBoolean, isMemorySize, oneOf, placementChecks } from "../validation";
import type { DomainSnapshot } from "../virsh/domain-snapshot";
import type { Probe } from "../virsh/probes";
import type { Command, Virsh } from "../virsh/virsh";
import { DomainXml, parseDomainXml } from "../xml/domain-xml";
import type { StepOutcome } from "../virsh/step-script";
import { BALLOON, GUEST_VCPUS, readForRefresh } from "./device-lookup";
import { agentSilence, GuestVcpus, guestVcpusOf, guestMemoryKiB, memoryBlocksOf } from "../guest-view";
import { guestTakesMemory, MEMORY_BLOCKS } from "./guest-memory";
import { AGENT_TIMEOUT_SECONDS, definableConfigArgs } from "../virsh/probes";
import { refuseUnpreviewed, toDynamicProvider, unpreviewedChange } from "./provider-kit";
import { claimDomainResources, refuseSharedDomainResources } from "./resources-owners";

const DEFAULT_SHUTDOWN_TIMEOUT_SECONDS = 120;
const DEFAULT_BALLOON_TIMEOUT_SECONDS = 20;
const START_TIMEOUT_SECONDS = 60;

function desiredOf(inputs: DomainResourcesInputs): DesiredResources {
    return {
        memoryKiB: inputs.memory === undefined ? undefined : parseMemoryKiB(inputs.memory, "memory"),
        maxMemoryKiB: inputs.maxMemory === undefined ? undefined : parseMemoryKiB(inputs.maxMemory, "maxMemory"),
        vcpus: inputs.vcpus,
        maxVcpus: inputs.maxVcpus,
    };
}

const NODE_INFO: Probe = { kind: "nodeinfo" };
const MAX_VCPUS: Probe = { kind: "maxvcpus" };
const DEFINABLE_CONFIG: Probe = { kind: "definableConfig" };
const HOST_CPUS: Probe = { kind: "hostCpus" };
const CGROUP_FS: Probe = { kind: "cgroupFs" };
const POLL_INTERVAL_MS = 1000;

/**
 * Limits only the host knows. More vCPUs than host CPUs is overcommit, normal and allowed (with a
 * warning); the hypervisor's `maxvcpus` is the hard limit. Returns the warnings.
 */
function checkHostLimits(virsh: Virsh, desired: DesiredResources, { cpus, memoryKiB }: HostSize, maxVcpus: number | undefined): string[] {
    for (const field of ["vcpus", "maxVcpus"] as const) {
        const wanted = desired[field];
        if (wanted !== undefined && maxVcpus !== undefined && wanted > maxVcpus) {
            throw new InputError(`${field} ${wanted} is more than the hypervisor allows a guest (virsh maxvcpus: ${maxVcpus})`, virsh.context(field),
                `set ${field} to at most ${maxVcpus}`);
        }
    }
    const biggest = Math.max(desired.maxMemoryKiB ?? 0, desired.memoryKiB ?? 0);
    if (memoryKiB && biggest > memoryKiB) {
        throw new InputError(`memory ${formatKiB(biggest)} is more than the host's ${formatKiB(memoryKiB)}`, virsh.context(),
            `ask for at most ${formatKiB(memoryKiB)}`);
    }
    return desired.vcpus !== undefined && cpus && desired.vcpus > cpus
        ? [`domain '${virsh.domain}': vcpus ${desired.vcpus} is more than the host's ${cpus} CPUs; the guest's vCPUs will share them (overcommit)`]
        : [];
}

function refuseReboot(virsh: Virsh, plan: ResourcePlan): never {
    throw new InputError(
        `these changes need a reboot of the running domain, and rebootPolicy is "never":\n  ${plan.rebootChanges.join("\n  ")}\nNothing was changed`,
        virsh.context(),
        `either set rebootPolicy: "ifRequired" (shut down gracefully, start again) or "configOnly" ` +
        `(write the config now, apply at your next reboot); or keep memory within the running maximum and only raise vcpus`);
}

/** Runs one virsh command in the batch; throws its error. */
async function runStep(session: DomainSession, args: string[]): Promise<DomainSnapshot> {
    const request = { steps: [{ args }] };
    const round = await session.round(request);
    const failure = round.failure(request);
    if (failure) throw failure;
    return round.snapshot();
}

async function waitForState(session: DomainSession, wanted: string, seconds: number): Promise<boolean> {
    const state = async () => (await session.round({})).snapshot().state;
    return (await pollUntil(session, { seconds, intervalMs: POLL_INTERVAL_MS }, await state(), state, (s) => s === wanted)).done;
}

async function reboot(session: DomainSession, inputs: DomainResourcesInputs): Promise<DomainSnapshot> {
    const { virsh } = session;
    const domain = `--domain=${virsh.domain}`;
    const timeout = inputs.shutdownTimeout ?? DEFAULT_SHUTDOWN_TIMEOUT_SECONDS;
    await runStep(session, ["shutdown", domain]);
    if (!(await waitForState(session, "shut off", timeout))) {
        if (!inputs.forceOff) {
            throw new VirshError(`the guest did not shut down within ${timeout} s; the new values are in the persistent config`,
                virsh.context(), "make the guest honour ACPI shutdown, raise shutdownTimeout, or set forceOff: true to power it off after the wait", 1);
        }
        await runStep(session, ["destroy", domain]);
    }
    await runStep(session, ["start", domain]);
    if (!(await waitForState(session, "running", START_TIMEOUT_SECONDS))) {
        throw new VirshError(`the domain did not come back to running within ${START_TIMEOUT_SECONDS} s`, virsh.context(),
            "look at the domain's log (/var/log/libvirt/qemu/<domain>.log) and start it by hand", 1);
    }
    return (await session.round({})).snapshot();
}

interface Balloon {
    actual: number | null;
    settled: boolean;
}

function balloonOf(round: Round, targetKiB: number, probe: Probe = BALLOON): Balloon {
    const actual = balloonActualKiB(round.probe(probe));
    return { actual, settled: actual !== null && Math.abs(actual - targetKiB) <= BALLOON_TOLERANCE_KIB };
}

/** The balloon target: the configured size, as far as the running maximum allows. */
function balloonTargetKiB(snapshot: DomainSnapshot): number {
    return Math.min(snapshot.config.currentMemoryKiB, (snapshot.live ?? snapshot.config).memoryKiB);
}

/** Waits (bounded) for the guest's balloon to reach the target, from the balloon read `probe` of `round`. */
async function settleBalloon(session: DomainSession, round: Round, probe: Probe, targetKiB: number, seconds: number): Promise<Balloon> {
    const read = async () => balloonOf(await session.round({ probes: [BALLOON] }), targetKiB);
    return (await pollUntil(session, { seconds, intervalMs: POLL_INTERVAL_MS }, balloonOf(round, targetKiB, probe), read, (b) => b.settled)).value;
}

/**
 * The running guest as the plan must see it. The live XML's currentMemory follows QEMU's balloon
 * events and lags by seconds (RIG.md): right after a change it may still show the old size, and a
 * plan that trusted it would skip the live setmem and leave the guest at the old size while the
 * config says the new one. dommemstat's actual is what the guest holds now.
 */
function withBalloonActual(live: DomainXml, actual: number | null): DomainXml {
    return actual !== null && Math.abs(actual - live.currentMemoryKiB) > BALLOON_TOLERANCE_KIB ? { ...live, currentMemoryKiB: actual } : live;
}

function verify(virsh: Virsh, plan: ResourcePlan, after: DomainSnapshot, liveApplied: boolean, raw: DomainSnapshot, split: MemorySplit | undefined, tuning: string[]): void {
    const want = plan.expectedConfig;
    const mismatches: string[] = [...tuning];
    const compare = (where: string, got: number, expected: number, name: string): void => {
        if (got !== expected) mismatches.push(`${where} ${name} is ${got}, expected ${expected}`);
    };
    compare("config", after.config.memoryKiB, want.maxMemoryKiB, "maxMemory (KiB)");
    compare("config", after.config.currentMemoryKiB, want.memoryKiB, "memory (KiB)");
    compare("config", after.config.maxVcpus, want.maxVcpus, "maxVcpus");
    compare("config", after.config.currentVcpus, want.vcpus, "vcpus");
    if (split) {
        compare("config", virtioMemOf(raw.config)?.requestedKiB ?? 0, split.requestedKiB, "virtio-mem requested (KiB)");
        if (raw.live && liveApplied) compare("live", virtioMemOf(raw.live)?.requestedKiB ?? 0, split.requestedKiB, "virtio-mem requested (KiB)");
    }
    if (after.live && liveApplied && plan.expectedLiveVcpus !== undefined) {
        compare("live", after.live.currentVcpus, plan.expectedLiveVcpus, "vcpus");
    }
    if (mismatches.length) {
        throw new VirshError(`virsh reported success but the domain XML disagrees: ${mismatches.join("; ")}`, virsh.context(),
            "run pulumi refresh to see the real values, then pulumi up again", 1);
    }
}

/** The snapshot as the balloon sees it: sizes without what a virtio-mem device adds (virtio-mem.ts). */
function balloonSnapshot(snapshot: DomainSnapshot): DomainSnapshot {
    return { ...snapshot, config: balloonView(snapshot.config), live: snapshot.live && balloonView(snapshot.live) };
}

interface Hotplug {
    settled: boolean;
}

/** What the guest itself says, read in the same exec as the snapshot. */
interface GuestView {
    /** The agent's answer; null when no agent answered. */
    vcpus: GuestVcpus | null;
    /** The guest's total memory from the balloon's statistics; null without them. */
    memoryKiB: number | null;
}

function guestViewOf(round: Round, balloonProbe: Probe = BALLOON): GuestView {
    return { vcpus: guestVcpusOf(round.probe(GUEST_VCPUS)), memoryKiB: guestMemoryKiB(round.probe(balloonProbe), round.snapshot().live) };
}

function outputsFrom(inputs: DomainResourcesInputs, raw: DomainSnapshot, balloon: Balloon, guest: GuestView, hotplug: Hotplug = { settled: true }): DomainResourcesOutputs {
    const snapshot = balloonSnapshot(raw);
    const now = snapshot.live ?? snapshot.config;
    const device = virtioMemOf(raw.live ?? raw.config);
    const running = snapshot.running ? guest : { vcpus: null, memoryKiB: null };
    const pendingChanges = pendingDifferences(snapshot.config, snapshot.live, running.vcpus);
    return {
        ...inputs,
        currentMemoryKiB: balloonTargetKiB(snapshot) + (device?.requestedKiB ?? 0),
        maxMemoryKiB: now.memoryKiB + (device?.sizeKiB ?? 0),
        balloonActualKiB: snapshot.running ? balloon.actual : null,
        balloonSettled: snapshot.running && balloon.settled,
        bootMaxMemoryKiB: now.memoryKiB,
        hotplugSizeKiB: device?.sizeKiB ?? null,
        hotplugRequestedKiB: device?.requestedKiB ?? null,
        hotplugCurrentKiB: device?.currentKiB ?? null,
        hotplugSettled: device === undefined || !snapshot.running || hotplug.settled,
        currentVcpus: now.currentVcpus,
        maximumVcpus: now.maxVcpus,
        guestAgent: running.vcpus !== null,
        guestVcpus: running.vcpus?.online ?? null,
        guestMemoryKiB: running.memoryKiB,
        state: snapshot.state,
        pendingReboot: pendingChanges.length > 0,
        pendingChanges,
        liveTuning: raw.live ? tuningOf(raw.live) : null,
        configTuning: tuningOf(raw.config),
    };
}

/**
 * A domain with a virtio-mem device: the balloon's share of `memory` (up to the boot maximum) for
 * the plan, and the commands that set the device's share (`--live` and `--config` apart: together
 * they fail on libvirt 9.0).
 */
function virtioMemSplit(virsh: Virsh, raw: DomainSnapshot, desired: DesiredResources): { balloon: DesiredResources; split?: MemorySplit; config: string[][]; live: string[][] } {
    const device = virtioMemOf(raw.config);
    if (!device || desired.memoryKiB === undefined) return { balloon: desired, config: [], live: [] };
    if (desired.maxMemoryKiB !== undefined) {
        throw new InputError("maxMemory cannot be set on a domain with a virtio-mem device: its ceiling is the boot maximum plus the device's size",
            virsh.context("maxMemory"), "remove maxMemory and set only memory (up to the ceiling)");
    }
    const split = splitMemory(raw.config, desired.memoryKiB);
    if (typeof split === "string") {
        throw new InputError(`${split}; nothing was changed`, virsh.context("memory"),
            `ask for at most ${formatKiB(ceilingKiB(raw.config))}, as the boot maximum plus a whole number of device blocks`);
    }
    const update = (flag: string) => ["update-memory-device", `--domain=${virsh.domain}`, `--requested-size=${split.requestedKiB}KiB`, flag];
    const liveDevice = raw.live && virtioMemOf(raw.live);
    return {
        balloon: { ...desired, memoryKiB: split.balloonKiB },
        split,
        config: device.requestedKiB !== split.requestedKiB ? [update("--config")] : [],
        live: liveDevice && liveDevice.requestedKiB !== split.requestedKiB ? [update("--live")] : [],
    };
}

interface HotplugPlan {
    /**
     * The `virsh define` that adds the device to the config, when it is missing: after a compare of
     * the config on the host with the one the new XML was made from (another change since, by a
     * member of the same batch or by hand, would otherwise be undone by the define).
     */
    define?: [Command, Command];
    /** The domain as the rest of the plan must see it: its config with the device. */
    view: DomainSnapshot;
    /** The reboot-required change, in words. */
    change?: string;
}

const VIRTIO_MEM_BLOCK_KIB = 2048;

/** The definableConfig probe's text; its failure names what the define needs. */
function definableConfig(virsh: Virsh, round: Round): string {
    const outcome = round.probe(DEFINABLE_CONFIG);
    if (outcome.ran && outcome.exitCode === 0) return outcome.stdout;
    throw new VirshError("cannot read the domain's persistent config with its secrets (virsh dumpxml --inactive --security-info), " +
        "which adding the virtio-mem device must keep; nothing was changed", virsh.context("hotplugMemory", outcome.ran ? outcome.stderr.trim() : undefined),
    "connect as a user with full access to the domain (a read-only libvirt connection cannot read its secrets)", outcome.ran ? outcome.exitCode : 1);
}

/**
 * `hotplugMemory`: a domain without a virtio-mem device gets one in its persistent config (only
 * `virsh define` can add the maximum, the NUMA cell and the device). The define is written from
 * the config with its secrets (`configText`, read in the same exec as `raw`), so a console
 * password stays. A running guest sees the device at its next boot, so it is then a
 * reboot-required change; a shut-off domain just has it at its next start. An existing device is
 * never resized here.
 */
function planHotplug(virsh: Virsh, raw: DomainSnapshot, configText: () => string, inputs: DomainResourcesInputs, desired: DesiredResources): HotplugPlan {
    if (inputs.hotplugMemory === undefined) return { view: raw };
    const sizeKiB = parseMemoryKiB(inputs.hotplugMemory, "hotplugMemory");
    const existing = virtioMemOf(raw.config);
    if (existing) {
        const liveDevice = raw.live && virtioMemOf(raw.live);
        if (existing.sizeKiB === sizeKiB) {
            // Added to the config earlier (configOnly) and not booted with yet: still waiting for its reboot.
            return raw.live && !liveDevice
                ? { view: raw, change: `hotplugMemory: none → ${formatKiB(sizeKiB)} (in the config; the guest gets it at its next boot)` }
                : { view: raw };
        }
        const plugged = Math.max(existing.requestedKiB ?? 0, liveDevice?.currentKiB ?? 0, liveDevice?.requestedKiB ?? 0);
        if (sizeKiB < plugged) {
            throw new InputError(`hotplugMemory ${formatKiB(sizeKiB)} is smaller than the memory the virtio-mem device already plugs (${formatKiB(plugged)}); nothing was changed`,
                virsh.context("hotplugMemory"), `keep hotplugMemory at ${formatKiB(existing.sizeKiB)} (the device's size)`);
        }
        throw new InputError(`hotplugMemory ${formatKiB(sizeKiB)}: the domain's virtio-mem device is ${formatKiB(existing.sizeKiB)}, and resizing a device is not supported; nothing was changed`,
            virsh.context("hotplugMemory"), `keep hotplugMemory at ${formatKiB(existing.sizeKiB)}, or change the device in the domain's XML (virsh edit) and reboot`);
    }
    const obstacle = raw.config.memoryDevices.length > 0 ? "the domain already has memory devices" : virtioMemObstacle(raw.configText);
    if (obstacle) {
        throw new InputError(`hotplugMemory: cannot add a virtio-mem device: ${obstacle}; nothing was changed`, virsh.context("hotplugMemory"),
            "add the virtio-mem device (with <maxMemory slots> and a NUMA cell) to the domain's XML yourself, then set hotplugMemory to its size");
    }
    if (sizeKiB % VIRTIO_MEM_BLOCK_KIB !== 0) {
        throw new InputError(`hotplugMemory ${formatKiB(sizeKiB)} is not a whole number of ${formatKiB(VIRTIO_MEM_BLOCK_KIB)} blocks`, virsh.context("hotplugMemory"),
            `use a multiple of ${formatKiB(VIRTIO_MEM_BLOCK_KIB)}, e.g. ${formatKiB(Math.ceil(sizeKiB / VIRTIO_MEM_BLOCK_KIB) * VIRTIO_MEM_BLOCK_KIB)}`);
    }
    const bootKiB = raw.config.memoryKiB;
    const requestedKiB = Math.max(0, (desired.memoryKiB ?? 0) - bootKiB);
    const device = { model: "virtio-mem", sizeKiB, blockKiB: VIRTIO_MEM_BLOCK_KIB, requestedKiB };
    const config = { ...raw.config, memoryKiB: bootKiB + sizeKiB, memoryDevices: [device] };
    const text = configText();
    const stdin = withVirtioMemDevice(text, { bootKiB, sizeKiB, blockKiB: VIRTIO_MEM_BLOCK_KIB, requestedKiB, maxVcpus: desired.maxVcpus ?? raw.config.maxVcpus });
    const unchanged: Command = { args: definableConfigArgs(virsh.domain), outputSha256: createHash("sha256").update(text, "utf8").digest("hex") };
    return {
        define: [unchanged, { args: ["define", "--file=/dev/stdin"], stdin }],
        view: { ...raw, config },
        change: !raw.live ? undefined : `hotplugMemory: none → ${formatKiB(sizeKiB)} (a virtio-mem device is added to the config; the guest gets it at its next boot)`,
    };
}

/** The snapshot with the live XML the in-exec virtio-mem wait read last (it came after the snapshot's read). */
function withSettledLive(raw: DomainSnapshot, outcome: StepOutcome): DomainSnapshot {
    if (!outcome.ran || outcome.exitCode !== 0 || !raw.live) return raw;
    try {
        return { ...raw, live: parseDomainXml(outcome.stdout) };
    } catch {
        return raw;
    }
}

/** Waits (bounded) until the guest has plugged what the device was asked for (`<current>` = `<requested>`). */
async function settleHotplug(session: DomainSession, raw: DomainSnapshot, seconds: number): Promise<{ snapshot: DomainSnapshot; settled: boolean }> {
    const plugged = (s: DomainSnapshot) => {
        const device = s.live && virtioMemOf(s.live);
        return !device || device.currentKiB === device.requestedKiB;
    };
    const read = async () => (await session.round({})).snapshot();
    const { value, done } = await pollUntil(session, { seconds, intervalMs: POLL_INTERVAL_MS }, raw, read, plugged);
    return { snapshot: value, settled: done };
}

/** A CPU just plugged takes the guest a moment to see: onlining it is tried for a few seconds. */
const GUEST_STEP_ATTEMPTS = 10;

function guestStepFailure(failure: VirshError, plan: ResourcePlan): VirshError {
    return new VirshError(`${failure.summary}; libvirt's domain and config hold the new vCPU count, but the guest agent could not bring ` +
        `the guest to ${plan.expectedGuestVcpus} online CPUs`, failure.context,
        `${failure.hint}. Check the agent in the guest (systemctl status qemu-guest-agent); running pulumi up again retries`, failure.exitCode);
}

/**
 * The guest's own count after the change: what the agent onlined must be online; without an agent,
 * CPUs plugged live may stay offline (Debian has no udev rule for it), and the log says so.
 */
async function checkGuestVcpus(virsh: Virsh, plan: ResourcePlan, before: GuestVcpus | null, after: Round): Promise<void> {
    const answer = after.probe(GUEST_VCPUS);
    const guest = guestVcpusOf(answer);
    if (plan.expectedGuestVcpus !== undefined && guest?.online !== plan.expectedGuestVcpus) {
        throw new VirshError(`the guest has ${guest ? guest.online : "an unknown number of"} CPUs online after setvcpus --guest, ` +
            `expected ${plan.expectedGuestVcpus}${guest ? "" : ` (the agent: ${agentSilence(answer)})`}`, virsh.context("vcpus"),
            "check the agent in the guest (systemctl status qemu-guest-agent) and /sys/devices/system/cpu/*/online; running pulumi up again retries", 1);
    }
    if (plan.expectedLiveVcpus !== undefined && before === null) {
        await warn(`domain '${virsh.domain}': ${plan.expectedLiveVcpus} vCPUs plugged live, but no guest agent answered (${agentSilence(answer)}), so ` +
            "how many the guest has online is unknown (guestVcpus: null); a guest without a CPU hotplug rule keeps them offline. " +
            "Install qemu-guest-agent in the guest and give the domain its channel (the provider then onlines them), or add the udev rule " +
            "SUBSYSTEM==\"cpu\", ACTION==\"add\", ATTR{online}==\"0\", ATTR{online}=\"1\"");
    }
}

/** A step in words: its subcommand and the halves it changes ("memtune --live --config"). */
const stepWords = (step: Command): string => [step.args[0], ...step.args.filter((a) => a === "--live" || a === "--config")].join(" ");

/** A failed tuning call: which one, what landed before it (every change that succeeded), and that nothing after it ran. */
export function tuningStepFailure(failure: VirshError, tuning: readonly Setting[], steps: readonly Command[], outcomes: readonly StepOutcome[], failedAt: number): VirshError {
    const landed = steps.slice(0, failedAt).filter((step, i) => step.outputSha256 === undefined && outcomes[i]?.ran && outcomes[i].exitCode === 0).map(stepWords);
    return new VirshError(`${failure.summary}; the tuning call ${stepWords(steps[failedAt])} (of ${tuning.map((s) => s.path).join(", ")}) failed, ` +
        `${landed.length > 0 ? `the calls before it landed (${landed.join(", ")})` : "no change ran before it"} and none after it ran`,
        failure.context, `${failure.hint}. Running pulumi up again converges`, failure.exitCode);
}

/** Tries of a hotplugMemory define whose config another change overtook (each from a fresh read). */
const DEFINE_TRIES = 3;

function configKeptChanging(virsh: Virsh): VirshError {
    return new VirshError(`the domain's persistent config changed between the read and the define ${DEFINE_TRIES} times in a row, ` +
        "so the virtio-mem device was not added (a define would have undone the other change); nothing else was changed", virsh.context("hotplugMemory"),
    "find what keeps changing the domain's config (another stack, a script, virsh edit), let it finish, then run pulumi up again", 1);
}

/**
 * create and update are one operation: compare the desired sizes with the domain and converge.
 * One read (the domain, its balloon, the host's size), one exec with every config and live
 * command and the read back; only the balloon (or a reboot) is waited for. An update (`stored`:
 * the outputs the preview diffed) never does more than the preview showed: no change the read
 * classifies worse, and no reboot (that comes only through the replacement the preview showed).
 */
function converge(inputs: DomainResourcesInputs, stored?: DomainResourcesOutputs): Promise<DomainResourcesOutputs> {
    const desired = desiredOf(inputs);
    const tuning = tuningSettings(inputs);
    const policy = inputs.rebootPolicy ?? "never";
    // The host's size matters only to a size that is asked for.
    // The agent's answers cost nothing when there is none (libvirt refuses at once).
    const probes = [BALLOON, GUEST_VCPUS, ...(Object.values(desired).some((v) => v !== undefined) ? [NODE_INFO] : []),
        ...(desired.vcpus !== undefined || desired.maxVcpus !== undefined ? [MAX_VCPUS] : []),
        ...(desired.memoryKiB !== undefined ? [MEMORY_BLOCKS] : []),
        // The text a hotplugMemory define is written from (its secrets stay in this call).
        ...(inputs.hotplugMemory !== undefined ? [DEFINABLE_CONFIG] : []),
        // A pin is checked against the host's online CPUs.
        ...(managesPins(inputs) ? [HOST_CPUS] : []),
        // cgroup v2 gives shares and the soft limit other ranges; a soft limit already set bounds memory asked for.
        ...(managesCgroupRanges(inputs) || desired.memoryKiB !== undefined || desired.maxMemoryKiB !== undefined || inputs.hotplugMemory !== undefined ? [CGROUP_FS] : [])];
    return inDomainBatch(inputs, async (session) => {
        const { virsh } = session;
        const owner = claimDomainResources(session, inputs);
        let round = await session.round({ probes });
        // The domain first: a domain that cannot be read says so before any host fact does.
        round.snapshot();
        refuseSharedDomainResources(session, owner);
        if (stored) refuseUnpreviewed(DOMAIN_RESOURCES_OPERATIONS, stored, refreshedOutputs(stored, round.snapshot(), round), inputs, virsh.context());
        if (probes.includes(NODE_INFO)) {
            const maxVcpus = probes.includes(MAX_VCPUS) ? hypervisorMaxVcpus(virsh, round.probe(MAX_VCPUS)) : undefined;
            for (const warning of checkHostLimits(virsh, desired, hostSize(virsh, round.probe(NODE_INFO)), maxVcpus)) await warn(warning);
        }
        const hostCpus = probes.includes(HOST_CPUS) ? onlineHostCpus(virsh, round.probe(HOST_CPUS)) : undefined;
        const cgroupV2Host = probes.includes(CGROUP_FS) ? cgroupV2(virsh, round.probe(CGROUP_FS)) : undefined;
        // The balloon read the round carried: after a lost answer, the apply's (which waited for its target).
        let readProbe: Probe = BALLOON;
        // A warning once per apply, not once per pass.
        const warned = new Set<string>();
        // A change whose answer was lost, or a define whose config changed meanwhile, is planned
        // again from the domain as it is after that exec.
        for (let attempt = 0, defineTries = 0; ; attempt++) {
            const hotplug = planHotplug(virsh, round.snapshot(), () => definableConfig(virsh, round), inputs, desired);
            const before = balloonSnapshot(hotplug.view);
            const memory = virtioMemSplit(virsh, hotplug.view, desired);
            const read = { guest: guestViewOf(round, readProbe), blocks: memoryBlocksOf(round.probe(MEMORY_BLOCKS)), balloonKiB: balloonActualKiB(round.probe(readProbe)) };
            const liveAsRead = before.live && withBalloonActual(before.live, read.balloonKiB);
            const plan = planResources(virsh.domain, before.config, liveAsRead, memory.balloon, before.running ? read.guest.vcpus : null);
            plan.configCommands.push(...memory.config);
            plan.liveCommands.push(...memory.live);
            if (hotplug.change) plan.rebootChanges.push(hotplug.change);
            const define = hotplug.define ?? [];
            const rebootNeeded = plan.rebootChanges.length > 0;
            if (rebootNeeded && policy === "never") refuseReboot(virsh, plan);
            if (rebootNeeded && policy === "ifRequired" && stored) throw unpreviewedChange(virsh.context(), plan.rebootChanges.map((c) => `${c}: a reboot`));
            const rebooting = rebootNeeded && policy === "ifRequired";
            // Through a reboot the config alone: the guest boots with it.
            const growth = memoryGrowth({ config: balloonView(round.snapshot().config), live: liveAsRead, plan, plannedConfig: hotplug.view.config,
                split: memory.split, liveSplit: memory.live.length > 0 });
            const tuningTarget = { config: hotplug.view.config, live: rebooting ? undefined : hotplug.view.live, desired, growth, restarts: rebooting,
                hostCpus, cgroupV2: cgroupV2Host, qemuRssKiB: qemuRssKiB(round.probe(readProbe)) ?? undefined };
            for (const warning of checkTuningOnHost(virsh, tuning, tuningTarget).filter((w) => !warned.has(w))) {
                warned.add(warning);
                await warn(warning);
            }
            const tuningPlan = planTuning(virsh.domain, tuning, tuningTarget.config, tuningTarget.live, hostCpus);
            // A raised hard limit before the memory grows, everything else after it shrank (a define first: it rewrites the config).
            const resizing = [...plan.configCommands, ...(rebooting ? [] : plan.liveCommands)];
            const commands = [...tuningPlan.beforeMemory, ...resizing, ...tuningPlan.afterMemory];
            const guestSteps: Command[] = rebooting ? [] : plan.guestCommands.map((args) => ({ args, timeoutSeconds: AGENT_TIMEOUT_SECONDS, attempts: GUEST_STEP_ATTEMPTS }));
            // A live balloon change is waited for on the host, in the same exec; so is a live virtio-mem change.
            const balloon: Probe = !rebooting && plan.expectedBalloonKiB !== undefined ? { kind: "balloon", settleKiB: plan.expectedBalloonKiB } : BALLOON;
            const plugging: Probe | undefined = !rebooting && memory.live.length > 0 && memory.split ? { kind: "virtioMemSettle", settleKiB: memory.split.requestedKiB } : undefined;
            const steps = [...define, ...commands.map((args) => ({ args })), ...guestSteps];
            if (steps.length > 0) {
                // With a define, its text again: a lost answer is planned anew from the read after reconnecting.
                const request = { steps, probes: [balloon, ...(plugging ? [plugging] : []), GUEST_VCPUS, ...(define.length > 0 ? [DEFINABLE_CONFIG] : [])], order: ChangeOrder.Resize };
                round = await session.round(request);
                readProbe = balloon;
                if (round.answerLost && attempt === 0) continue;
                const failure = round.failure(request);
                if (failure) {
                    const failedAt = round.steps.findIndex((o) => o.ran && o.exitCode !== 0);
                    // The compare before the define found another config (it says nothing then): nothing of
                    // this change ran; plan again from a fresh read.
                    const compare = round.steps[0];
                    if (failedAt === 0 && define.length > 0 && compare.ran && compare.stderr.trim() === "") {
                        if (++defineTries >= DEFINE_TRIES) throw configKeptChanging(virsh);
                        round = await session.round({ probes });
                        readProbe = BALLOON;
                        continue;
                    }
                    const resizeFrom = define.length + tuningPlan.beforeMemory.length;
                    if (failedAt >= steps.length - guestSteps.length) throw guestStepFailure(failure, plan);
                    const inTuning = failedAt >= resizeFrom + resizing.length || (failedAt >= define.length && failedAt < resizeFrom);
                    if (inTuning) throw tuningStepFailure(failure, tuning, steps, round.steps, failedAt);
                    throw failedAt >= resizeFrom + plan.configCommands.length
                        ? new VirshError(`${failure.summary}; the persistent config already holds the new values, the running guest does not`,
                            failure.context, `${failure.hint}. Running pulumi up again converges`, failure.exitCode)
                        : failure;
                }
            }
            const afterRaw = rebooting ? await reboot(session, inputs) : round.snapshot();
            const after = balloonSnapshot(afterRaw);
            verify(virsh, plan, after, !rebooting, afterRaw, memory.split, tuningMismatches(tuning, afterRaw.config, afterRaw.live, hostCpus));
            // The latest balloon read: the apply's (or the first read's), or a new one after a reboot.
            const [last, probe] = rebooting ? [await session.round({ probes: [BALLOON, GUEST_VCPUS] }), BALLOON] : [round, steps.length > 0 ? balloon : BALLOON];
            if (!rebooting && after.running) await checkGuestVcpus(virsh, plan, read.guest.vcpus, last);
            const settled = after.running && inputs.memory !== undefined
                ? await settleBalloon(session, last, probe, balloonTargetKiB(after), inputs.balloonTimeout ?? DEFAULT_BALLOON_TIMEOUT_SECONDS)
                : balloonOf(last, balloonTargetKiB(after), probe);
            const plugged = memory.split && afterRaw.running
                ? await settleHotplug(session, plugging ? withSettledLive(afterRaw, round.probe(plugging)) : afterRaw, inputs.balloonTimeout ?? DEFAULT_BALLOON_TIMEOUT_SECONDS)
                : { snapshot: afterRaw, settled: true };
            const guest = guestViewOf(last, probe);
            // Also after a shrink the guest could not finish: the total to expect is what the device still holds.
            if (plugging) {
                const pluggedKiB = (snapshot: DomainSnapshot) => (snapshot.live && virtioMemOf(snapshot.live)?.currentKiB) ?? 0;
                const balloonMoved = settled.actual !== null && read.balloonKiB !== null ? settled.actual - read.balloonKiB : 0;
                guest.memoryKiB = await guestTakesMemory(session, {
                    blocksBefore: read.blocks,
                    totalBeforeKiB: read.guest.memoryKiB,
                    deltaKiB: balloonMoved + pluggedKiB(plugged.snapshot) - pluggedKiB(hotplug.view),
                    pluggedKiB: pluggedKiB(plugged.snapshot),
                });
            }
            return outputsFrom(inputs, plugged.snapshot, settled, guest, plugged);
        }
    });
}

/**
 * What a refresh reports, from a round that read the domain with BALLOON and GUEST_VCPUS. Input-named
 * fields report the persistent config (what holds after a reboot), so drift shows in the diff.
 */
function refreshedOutputs(olds: DomainResourcesOutputs, snapshot: DomainSnapshot, round: Round): DomainResourcesOutputs {
    const config = snapshot.config;
    const outs = outputsFrom(olds, snapshot, balloonOf(round, balloonTargetKiB(balloonSnapshot(snapshot))), guestViewOf(round));
    const device = virtioMemOf(config);
    return {
        ...outs,
        memory: olds.memory === undefined ? undefined : formatKiB(config.currentMemoryKiB + (device?.requestedKiB ?? 0)),
        hotplugMemory: olds.hotplugMemory === undefined || !device ? olds.hotplugMemory : formatKiB(device.sizeKiB),
        maxMemory: olds.maxMemory === undefined ? undefined : formatKiB(config.memoryKiB),
        // With an agent, the guest's own count: a CPU offlined by hand inside the guest is drift.
        vcpus: olds.vcpus === undefined ? undefined : outs.guestVcpus ?? config.currentVcpus,
        maxVcpus: olds.maxVcpus === undefined ? undefined : config.maxVcpus,
        ...refreshedTuning(olds, config, snapshot.live, hostCpusIn(round)),
    };
}

/** The host's online CPUs when the round read them (a refresh of managed pins), else undefined. */
function hostCpusIn(round: Round): number[] | undefined {
    const outcome = round.probe(HOST_CPUS);
    // Unread, a pin reads as its own cpuset only.
    return outcome.ran && outcome.exitCode === 0 ? cpuMapOf(outcome.stdout) : undefined;
}

/** The rule column follows the domain's state at the last read. */
const DOMAIN_RESOURCES_OPERATIONS = {
    table: DOMAIN_RESOURCES_RULES,
    wasRunning: (olds: DomainResourcesOutputs) => olds.state !== "shut off",
};

export const domainResourcesProvider = toDynamicProvider<DomainResourcesInputs, DomainResourcesOutputs>({
    ...DOMAIN_RESOURCES_OPERATIONS,
    checks: (inputs) => placementChecks(inputs as unknown as Record<string, unknown>)
        .field("memory", isMemorySize)
        .field("maxMemory", isMemorySize)
        .field("hotplugMemory", isMemorySize)
        .field("vcpus", integerAtLeast(1))
        .field("maxVcpus", integerAtLeast(1))
        .field("rebootPolicy", oneOf("never", "ifRequired", "configOnly"))
        .field("shutdownTimeout", integerAtLeast(1))
        .field("forceOff", isBoolean)
        .field("balloonTimeout", integerAtLeast(0))
        .failures.concat(tuningCheckFailures(inputs as unknown as Record<string, unknown>)),
    // delete is a no-op, so a replacement creates first: under "never" the refused create is the whole story.
    deleteBeforeReplace: false,
    create: async (inputs) => ({ id: `${domainKey(inputs)}#resources`, outs: await converge(inputs) }),
    update: (_id, olds, news) => converge(news, olds),
    read: async (id, olds) => {
        const round = await readForRefresh(id, olds, managesPins(olds) ? [HOST_CPUS] : []);
        const snapshot = round.snapshotIfExists();
        return snapshot && refreshedOutputs(olds, snapshot, round);
    },
    // The domain is not ours to remove: deleting this resource only stops managing its sizes.
    delete: async () => undefined,
});
