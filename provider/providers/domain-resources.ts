/**
 * DomainResources: memory and vCPUs of an existing domain. Live where libvirt can; otherwise the
 * reboot policy decides, and "never" (the default) fails before anything changes.
 */
import type { DomainResourcesInputs, DomainResourcesOutputs } from "../contract";
import { InputError, LibvirtLiveError, VirshError } from "../errors";
import { withDomainLock } from "../domain-lock";
import { DesiredResources, pendingDifferences, planResources, ResourcePlan } from "../domain-resources-plan";
import { DOMAIN_RESOURCES_RULES } from "../rules/domain-resources-rules";
import { domainKey, virshFor } from "../session";
import { formatKiB, parseMemoryKiB } from "../units";
import { integerAtLeast, isBoolean, isMemorySize, oneOf, placementChecks } from "../validation";
import { DomainSnapshot, readSnapshot, readSnapshotIfExists } from "../virsh/domain-snapshot";
import { pollUntil, Virsh } from "../virsh/virsh";
import type { DomainXml } from "../xml/domain-xml";
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

/** Limits only the host knows: its CPU count and memory. */
async function checkHostLimits(virsh: Virsh, desired: DesiredResources): Promise<void> {
    const info = await virsh.run(["nodeinfo"]);
    const cpus = Number(/^CPU\(s\):\s*(\d+)/m.exec(info)?.[1]);
    const memoryKiB = Number(/^Memory size:\s*(\d+)\s*KiB/m.exec(info)?.[1]);
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

async function runAll(virsh: Virsh, commands: string[][], note?: string): Promise<void> {
    for (const args of commands) {
        try {
            await virsh.run(args);
        } catch (error) {
            if (error instanceof LibvirtLiveError && note) {
                throw new VirshError(`${error.summary}; ${note}`, error.context, `${error.hint}. Running pulumi up again converges`,
                    error instanceof VirshError ? error.exitCode : 1);
            }
            throw error;
        }
    }
}

async function waitForState(virsh: Virsh, wanted: string, seconds: number): Promise<boolean> {
    const reached = await pollUntil(async () => ((await readSnapshot(virsh)).state === wanted ? true : undefined), seconds * 1000, 1000);
    return reached === true;
}

async function reboot(virsh: Virsh, inputs: DomainResourcesInputs): Promise<void> {
    const timeout = inputs.shutdownTimeout ?? DEFAULT_SHUTDOWN_TIMEOUT_SECONDS;
    await virsh.run(["shutdown", `--domain=${virsh.domain}`]);
    if (!(await waitForState(virsh, "shut off", timeout))) {
        if (!inputs.forceOff) {
            throw new VirshError(`the guest did not shut down within ${timeout} s; the new values are in the persistent config`,
                virsh.context(), "make the guest honour ACPI shutdown, raise shutdownTimeout, or set forceOff: true to power it off after the wait", 1);
        }
        await virsh.run(["destroy", `--domain=${virsh.domain}`]);
    }
    await virsh.run(["start", `--domain=${virsh.domain}`]);
    if (!(await waitForState(virsh, "running", START_TIMEOUT_SECONDS))) {
        throw new VirshError(`the domain did not come back to running within ${START_TIMEOUT_SECONDS} s`, virsh.context(),
            "look at the domain's log (/var/log/libvirt/qemu/<domain>.log) and start it by hand", 1);
    }
}

/** A guest's balloon may stop a page table short of the target; within this it has followed. */
const BALLOON_TOLERANCE_KIB = 1024;

/** What the guest's balloon holds now (`dommemstat` actual), in KiB; null when it reports none. */
async function balloonActualKiB(virsh: Virsh): Promise<number | null> {
    const stats = await virsh.attempt(["dommemstat", `--domain=${virsh.domain}`]);
    const match = /^actual\s+(\d+)/m.exec(stats.stdout);
    return match ? Number(match[1]) : null;
}

/** Waits (bounded) for the guest's balloon to reach the target; returns what it holds. */
async function settleBalloon(virsh: Virsh, targetKiB: number, seconds: number): Promise<{ actual: number | null; settled: boolean }> {
    let actual: number | null = null;
    const settled = await pollUntil(async () => {
        actual = await balloonActualKiB(virsh);
        return actual !== null && Math.abs(actual - targetKiB) <= BALLOON_TOLERANCE_KIB ? true : undefined;
    }, seconds * 1000, 1000);
    return { actual, settled: settled === true };
}

/**
 * The running guest as the plan must see it. The live XML's currentMemory follows QEMU's balloon
 * events and lags by seconds (RIG.md): right after a change it may still show the old size, and a
 * plan that trusted it would skip the live setmem and leave the guest at the old size while the
 * config says the new one. dommemstat's actual is what the guest holds now.
 */
async function withBalloonActual(virsh: Virsh, live: DomainXml): Promise<DomainXml> {
    const actual = await balloonActualKiB(virsh);
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

async function outputsFrom(virsh: Virsh, inputs: DomainResourcesInputs, snapshot: DomainSnapshot, waitForBalloon: boolean): Promise<DomainResourcesOutputs> {
    const now = snapshot.live ?? snapshot.config;
    // The balloon target: the configured size, as far as the running maximum allows.
    const targetKiB = Math.min(snapshot.config.currentMemoryKiB, now.memoryKiB);
    const balloon = snapshot.running
        ? await settleBalloon(virsh, targetKiB, waitForBalloon ? inputs.balloonTimeout ?? DEFAULT_BALLOON_TIMEOUT_SECONDS : 0)
        : { actual: null, settled: false };
    const pendingChanges = pendingDifferences(snapshot.config, snapshot.live);
    return {
        ...inputs,
        currentMemoryKiB: targetKiB,
        maxMemoryKiB: now.memoryKiB,
        balloonActualKiB: balloon.actual,
        balloonSettled: balloon.settled,
        currentVcpus: now.currentVcpus,
        maximumVcpus: now.maxVcpus,
        state: snapshot.state,
        pendingReboot: pendingChanges.length > 0,
        pendingChanges,
    };
}

/** create and update are one operation: compare the desired sizes with the domain and converge. */
function converge(inputs: DomainResourcesInputs): Promise<DomainResourcesOutputs> {
    const virsh = virshFor(inputs);
    return withDomainLock(domainKey(inputs), async () => {
        const desired = desiredOf(inputs);
        const before = await readSnapshot(virsh);
        await checkHostLimits(virsh, desired);
        const plan = planResources(virsh.domain, before.config, before.live && await withBalloonActual(virsh, before.live), desired);
        const policy = inputs.rebootPolicy ?? "never";
        const rebootNeeded = plan.rebootChanges.length > 0;
        if (rebootNeeded && policy === "never") refuseReboot(virsh, plan);

        await runAll(virsh, plan.configCommands);
        const rebooting = rebootNeeded && policy === "ifRequired";
        if (rebooting) await reboot(virsh, inputs);
        else await runAll(virsh, plan.liveCommands, "the persistent config already holds the new values, the running guest does not");

        const after = await readSnapshot(virsh);
        verify(virsh, plan, after, !rebooting);
        return outputsFrom(virsh, inputs, after, inputs.memory !== undefined);
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
        const virsh = virshFor(olds);
        const snapshot = await readSnapshotIfExists(virsh);
        if (!snapshot) return undefined;
        // Input-named fields report the persistent config (what holds after a reboot), so drift shows in the diff.
        const config = snapshot.config;
        const outs = await outputsFrom(virsh, olds, snapshot, false);
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
