/**
 * DomainResources: memory and vCPUs of an existing domain. Live where libvirt can; otherwise the
 * reboot policy decides, and "never" (the default) fails before anything changes.
 */
import type { DomainResourcesInputs, DomainResourcesOutputs } from "../contract";
import { DomainSession, inDomainBatch } from "../batch/domain-batch";
import { ChangeOrder, Round } from "../batch/round";
import { InputError, VirshError } from "../errors";
import { DesiredResources, pendingDifferences, planResources, ResourcePlan } from "../domain-resources-plan";
import { balloonActualKiB, HostSize, hostSize } from "../host-checks";
import { BALLOON_TOLERANCE_KIB } from "../virsh/probes";
import { DOMAIN_RESOURCES_RULES } from "../rules/domain-resources-rules";
import { domainKey } from "../session";
import { formatKiB, parseMemoryKiB } from "../units";
import { integerAtLeast, isBoolean, isMemorySize, oneOf, placementChecks } from "../validation";
import type { DomainSnapshot } from "../virsh/domain-snapshot";
import type { Probe } from "../virsh/probes";
import type { Virsh } from "../virsh/virsh";
import type { DomainXml } from "../xml/domain-xml";
import { BALLOON, readForRefresh } from "./device-lookup";
import { toDynamicProvider } from "./provider-kit";

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
const POLL_INTERVAL_MS = 1000;

/** Limits only the host knows: its CPU count and memory. */
function checkHostLimits(virsh: Virsh, desired: DesiredResources, { cpus, memoryKiB }: HostSize): void {
    if (desired.vcpus !== undefined && cpus && desired.vcpus > cpus) {
        throw new InputError(`vcpus ${desired.vcpus} is more than the host's ${cpus} CPUs`, virsh.context(),
            `set vcpus to at most ${cpus}`);
    }
    const biggest = Math.max(desired.maxMemoryKiB ?? 0, desired.memoryKiB ?? 0);
    if (memoryKiB && biggest > memoryKiB) {
        throw new InputError(`memory ${formatKiB(biggest)} is more than the host's ${formatKiB(memoryKiB)}`, virsh.context(),
            `ask for at most ${formatKiB(memoryKiB)}`);
    }
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
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
        if ((await session.round({})).snapshot().state === wanted) return true;
        if (Date.now() >= deadline) return false;
        await session.sleep(POLL_INTERVAL_MS);
    }
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
    const deadline = Date.now() + seconds * 1000;
    let balloon = balloonOf(round, targetKiB, probe);
    while (!balloon.settled && Date.now() < deadline) {
        await session.sleep(Math.min(POLL_INTERVAL_MS, Math.max(0, deadline - Date.now())));
        balloon = balloonOf(await session.round({ probes: [BALLOON] }), targetKiB);
    }
    return balloon;
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

function verify(virsh: Virsh, plan: ResourcePlan, after: DomainSnapshot, liveApplied: boolean): void {
    const want = plan.expectedConfig;
    const mismatches: string[] = [];
    const compare = (where: string, got: number, expected: number, name: string): void => {
        if (got !== expected) mismatches.push(`${where} ${name} is ${got}, expected ${expected}`);
    };
    compare("config", after.config.memoryKiB, want.maxMemoryKiB, "maxMemory (KiB)");
    compare("config", after.config.currentMemoryKiB, want.memoryKiB, "memory (KiB)");
    compare("config", after.config.maxVcpus, want.maxVcpus, "maxVcpus");
    compare("config", after.config.currentVcpus, want.vcpus, "vcpus");
    if (after.live && liveApplied && plan.expectedLiveVcpus !== undefined) {
        compare("live", after.live.currentVcpus, plan.expectedLiveVcpus, "vcpus");
    }
    if (mismatches.length) {
        throw new VirshError(`virsh reported success but the domain XML disagrees: ${mismatches.join("; ")}`, virsh.context(),
            "run pulumi refresh to see the real values, then pulumi up again", 1);
    }
}

function outputsFrom(inputs: DomainResourcesInputs, snapshot: DomainSnapshot, balloon: Balloon): DomainResourcesOutputs {
    const now = snapshot.live ?? snapshot.config;
    const pendingChanges = pendingDifferences(snapshot.config, snapshot.live);
    return {
        ...inputs,
        currentMemoryKiB: balloonTargetKiB(snapshot),
        maxMemoryKiB: now.memoryKiB,
        balloonActualKiB: snapshot.running ? balloon.actual : null,
        balloonSettled: snapshot.running && balloon.settled,
        currentVcpus: now.currentVcpus,
        maximumVcpus: now.maxVcpus,
        state: snapshot.state,
        pendingReboot: pendingChanges.length > 0,
        pendingChanges,
    };
}

/**
 * create and update are one operation: compare the desired sizes with the domain and converge.
 * One read (the domain, its balloon, the host's size), one exec with every config and live
 * command and the read back; only the balloon (or a reboot) is waited for.
 */
function converge(inputs: DomainResourcesInputs): Promise<DomainResourcesOutputs> {
    const desired = desiredOf(inputs);
    const policy = inputs.rebootPolicy ?? "never";
    // The host's size matters only to a size that is asked for.
    const probes = [BALLOON, ...(Object.values(desired).some((v) => v !== undefined) ? [NODE_INFO] : [])];
    return inDomainBatch(inputs, async (session) => {
        const { virsh } = session;
        let round = await session.round({ probes });
        // The domain first: a domain that cannot be read says so before any host fact does.
        round.snapshot();
        if (probes.includes(NODE_INFO)) checkHostLimits(virsh, desired, hostSize(virsh, round.probe(NODE_INFO)));
        // A change whose answer was lost is planned again from the domain as it is after reconnecting.
        for (let attempt = 0; ; attempt++) {
            const before = round.snapshot();
            const plan = planResources(virsh.domain, before.config, before.live && withBalloonActual(before.live, balloonActualKiB(round.probe(BALLOON))), desired);
            const rebootNeeded = plan.rebootChanges.length > 0;
            if (rebootNeeded && policy === "never") refuseReboot(virsh, plan);
            const rebooting = rebootNeeded && policy === "ifRequired";
            const commands = [...plan.configCommands, ...(rebooting ? [] : plan.liveCommands)];
            // A live balloon change is waited for on the host, in the same exec.
            const balloon: Probe = !rebooting && plan.expectedBalloonKiB !== undefined ? { kind: "balloon", settleKiB: plan.expectedBalloonKiB } : BALLOON;
            if (commands.length > 0) {
                const request = { steps: commands.map((args) => ({ args })), probes: [balloon], order: ChangeOrder.Resize };
                round = await session.round(request);
                if (round.answerLost && attempt === 0) continue;
                const failure = round.failure(request);
                if (failure) {
                    const failedLive = round.steps.findIndex((o) => o.ran && o.exitCode !== 0) >= plan.configCommands.length;
                    throw failedLive
                        ? new VirshError(`${failure.summary}; the persistent config already holds the new values, the running guest does not`,
                            failure.context, `${failure.hint}. Running pulumi up again converges`, failure.exitCode)
                        : failure;
                }
            }
            const after = rebooting ? await reboot(session, inputs) : round.snapshot();
            verify(virsh, plan, after, !rebooting);
            // The latest balloon read: the apply's (or the first read's), or a new one after a reboot.
            const [last, probe] = rebooting ? [await session.round({ probes: [BALLOON] }), BALLOON] : [round, commands.length > 0 ? balloon : BALLOON];
            const settled = after.running && inputs.memory !== undefined
                ? await settleBalloon(session, last, probe, balloonTargetKiB(after), inputs.balloonTimeout ?? DEFAULT_BALLOON_TIMEOUT_SECONDS)
                : balloonOf(last, balloonTargetKiB(after), probe);
            return outputsFrom(inputs, after, settled);
        }
    });
}

export const domainResourcesProvider = toDynamicProvider<DomainResourcesInputs, DomainResourcesOutputs>({
    table: DOMAIN_RESOURCES_RULES,
    checks: (inputs) => placementChecks(inputs as unknown as Record<string, unknown>)
        .field("memory", isMemorySize)
        .field("maxMemory", isMemorySize)
        .field("vcpus", integerAtLeast(1))
        .field("maxVcpus", integerAtLeast(1))
        .field("rebootPolicy", oneOf("never", "ifRequired", "configOnly"))
        .field("shutdownTimeout", integerAtLeast(1))
        .field("forceOff", isBoolean)
        .field("balloonTimeout", integerAtLeast(0))
        .failures,
    wasRunning: (olds) => olds.state !== "shut off",
    // delete is a no-op, so a replacement creates first: under "never" the refused create is the whole story.
    deleteBeforeReplace: false,
    create: async (inputs) => ({ id: `${domainKey(inputs)}#resources`, outs: await converge(inputs) }),
    update: (_id, _olds, news) => converge(news),
    read: async (_id, olds) => {
        const round = await readForRefresh(olds);
        const snapshot = round.snapshotIfExists();
        if (!snapshot) return undefined;
        // Input-named fields report the persistent config (what holds after a reboot), so drift shows in the diff.
        const config = snapshot.config;
        const outs = outputsFrom(olds, snapshot, balloonOf(round, balloonTargetKiB(snapshot)));
        return {
            ...outs,
            memory: olds.memory === undefined ? undefined : formatKiB(config.currentMemoryKiB),
            maxMemory: olds.maxMemory === undefined ? undefined : formatKiB(config.memoryKiB),
            vcpus: olds.vcpus === undefined ? undefined : config.currentVcpus,
            maxVcpus: olds.maxVcpus === undefined ? undefined : config.maxVcpus,
        };
    },
    // The domain is not ours to remove: deleting this resource only stops managing its sizes.
    delete: async () => undefined,
});
