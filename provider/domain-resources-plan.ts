/**
 * From a snapshot and the desired sizes to the virsh commands that get there, and which of the
 * changes cannot happen without a reboot. Pure: the provider runs the plan; the tests read it.
 */
import type { DomainXml } from "./xml/domain-xml";
import type { GuestVcpus } from "./guest-view";
import { formatKiB } from "./units";
import { MemorySplit, virtioMemOf } from "./virtio-mem";

export interface DesiredResources {
    memoryKiB?: number;
    maxMemoryKiB?: number;
    vcpus?: number;
    maxVcpus?: number;
}

export interface ResourcePlan {
    /** Writes to the persistent config, in an order libvirt accepts (a maximum rises before the current value). */
    configCommands: string[][];
    /** Changes to the running guest that libvirt can make live. */
    liveCommands: string[][];
    /** Readable "property: old → new" lines for what only a reboot brings. */
    rebootChanges: string[];
    /** What the config must hold afterwards, for verification. */
    expectedConfig: Required<DesiredResources>;
    /** The running guest's vCPU count once the live commands ran (memory is checked through the balloon). */
    expectedLiveVcpus?: number;
    /**
     * Through the guest agent, after the live commands: online (or offline) CPUs in the guest. Tried
     * a few times: a CPU just plugged takes the guest a moment to see.
     */
    guestCommands: string[][];
    /** The CPUs online in the guest afterwards, when the agent is used. */
    expectedGuestVcpus?: number;
    /** The balloon target a live setmem sets, when the plan has one. */
    expectedBalloonKiB?: number;
}

function ordered(raising: boolean, maximum: string[] | undefined, current: string[] | undefined): string[][] {
    const pair = raising ? [maximum, current] : [current, maximum];
    return pair.filter((c): c is string[] => c !== undefined);
}

/**
 * `guest` is the agent's answer at the read (null: no agent answered). With it, vCPUs go down live
 * (offlined in the guest, still plugged, gone at the next boot) and hot-added ones are onlined.
 */
export function planResources(domain: string, config: DomainXml, live: DomainXml | undefined, desired: DesiredResources, guest: GuestVcpus | null = null): ResourcePlan {
    const d = `--domain=${domain}`;
    const maxMemoryKiB = desired.maxMemoryKiB ?? Math.max(config.memoryKiB, desired.memoryKiB ?? 0);
    const memoryKiB = desired.memoryKiB ?? Math.min(config.currentMemoryKiB, maxMemoryKiB);
    const maxVcpus = desired.maxVcpus ?? Math.max(config.maxVcpus, desired.vcpus ?? 0);
    const vcpus = desired.vcpus ?? Math.min(config.currentVcpus, maxVcpus);

    const configCommands = [
        ...ordered(maxMemoryKiB >= config.memoryKiB,
            maxMemoryKiB !== config.memoryKiB ? ["setmaxmem", d, `--size=${maxMemoryKiB}KiB`, "--config"] : undefined,
            memoryKiB !== config.currentMemoryKiB ? ["setmem", d, `--size=${memoryKiB}KiB`, "--config"] : undefined),
        ...ordered(maxVcpus >= config.maxVcpus,
            maxVcpus !== config.maxVcpus ? ["setvcpus", d, `--count=${maxVcpus}`, "--maximum", "--config"] : undefined,
            vcpus !== config.currentVcpus ? ["setvcpus", d, `--count=${vcpus}`, "--config"] : undefined),
    ];
    const plan: ResourcePlan = { configCommands, liveCommands: [], guestCommands: [], rebootChanges: [], expectedConfig: { memoryKiB, maxMemoryKiB, vcpus, maxVcpus } };
    if (!live) return plan;

    if (maxMemoryKiB !== live.memoryKiB) {
        plan.rebootChanges.push(`maxMemory: ${formatKiB(live.memoryKiB)} → ${formatKiB(maxMemoryKiB)} (the maximum changes only at boot)`);
    }
    // Only a managed size: a balloon someone set by hand (setmem --live) is left alone when memory is
    // not given, unless a maxMemory asked for brings it down (the guest then boots with no more).
    const managed = desired.memoryKiB !== undefined || (desired.maxMemoryKiB !== undefined && memoryKiB < live.currentMemoryKiB);
    if (managed && memoryKiB !== live.currentMemoryKiB) {
        if (memoryKiB <= live.memoryKiB) {
            plan.liveCommands.push(["setmem", d, `--size=${memoryKiB}KiB`, "--live"]);
            plan.expectedBalloonKiB = memoryKiB;
        } else plan.rebootChanges.push(`memory: ${formatKiB(live.currentMemoryKiB)} → ${formatKiB(memoryKiB)} (above the running maximum ${formatKiB(live.memoryKiB)})`);
    }
    if (maxVcpus !== live.maxVcpus) {
        plan.rebootChanges.push(`maxVcpus: ${live.maxVcpus} → ${maxVcpus} (the maximum changes only at boot)`);
    }
    if (vcpus > live.currentVcpus && vcpus <= live.maxVcpus) {
        plan.liveCommands.push(["setvcpus", d, `--count=${vcpus}`, "--live"]);
        plan.expectedLiveVcpus = vcpus;
    } else if (vcpus > live.currentVcpus) {
        plan.rebootChanges.push(`vcpus: ${live.currentVcpus} → ${vcpus} (above the running maximum ${live.maxVcpus})`);
    } else if (vcpus < live.currentVcpus && !guest) {
        plan.rebootChanges.push(`vcpus: ${live.currentVcpus} → ${vcpus} (vCPUs cannot be removed from a running guest without its agent)`);
    }
    // Only a managed count: a guest whose CPUs someone set by hand is left alone when vcpus is not given.
    if (guest && desired.vcpus !== undefined && vcpus <= live.maxVcpus && (guest.online !== vcpus || plan.expectedLiveVcpus !== undefined)) {
        plan.guestCommands.push(["setvcpus", d, `--count=${vcpus}`, "--guest"]);
        plan.expectedGuestVcpus = vcpus;
    }
    return plan;
}

/** Whether the plan gives each half more memory to use: the memory limits it must then fit under matter more. */
export interface MemoryGrowth {
    config: boolean;
    live: boolean;
}

/** Each half as read and as the plan saw it (in the balloon's view, a device's share apart; the balloon's actual size live), and the plan. */
export interface PlannedMemory {
    config: DomainXml;
    live?: DomainXml;
    plan: ResourcePlan;
    /** The config as planned (a virtio-mem device added by hotplugMemory in it). */
    plannedConfig: DomainXml;
    /** The virtio-mem device's requested size, when the plan sets it; `liveSplit`: also on the running guest. */
    split?: MemorySplit;
    liveSplit: boolean;
}

/**
 * What the plan raises, each half against itself as read: the config's balloon size or maximum,
 * a device added, or a virtio-mem request above the read one; the running guest's balloon target
 * or virtio-mem request above what it holds.
 */
export function memoryGrowth({ config, live, plan, plannedConfig, split, liveSplit }: PlannedMemory): MemoryGrowth {
    const requested = (xml: DomainXml | undefined) => (xml && virtioMemOf(xml)?.requestedKiB) ?? 0;
    const deviceAdded = virtioMemOf(plannedConfig) !== undefined && virtioMemOf(config) === undefined;
    const configGrows = plan.expectedConfig.memoryKiB > config.currentMemoryKiB || plan.expectedConfig.maxMemoryKiB > config.memoryKiB || deviceAdded ||
        (split !== undefined && split.requestedKiB > requested(config));
    const liveGrows = live !== undefined && ((plan.expectedBalloonKiB ?? 0) > live.currentMemoryKiB ||
        (liveSplit && split !== undefined && split.requestedKiB > requested(live)));
    return { config: configGrows, live: liveGrows };
}

/**
 * What differs between the running guest and its config, in words (changes waiting for a reboot).
 * The live currentMemory follows the balloon, so memory counts only when it exceeds the running maximum.
 * With the agent's answer, the running vCPUs are those online in the guest (offlined ones stay plugged).
 */
export function pendingDifferences(config: DomainXml, live: DomainXml | undefined, guest: GuestVcpus | null = null): string[] {
    if (!live) return [];
    const runningVcpus = guest?.online ?? live.currentVcpus;
    const rows: Array<[string, number, number, (n: number) => string, boolean]> = [
        ["maxMemory", live.memoryKiB, config.memoryKiB, formatKiB, live.memoryKiB !== config.memoryKiB],
        ["memory", live.currentMemoryKiB, config.currentMemoryKiB, formatKiB, config.currentMemoryKiB > live.memoryKiB],
        ["maxVcpus", live.maxVcpus, config.maxVcpus, String, live.maxVcpus !== config.maxVcpus],
        ["vcpus", runningVcpus, config.currentVcpus, String, runningVcpus !== config.currentVcpus],
    ];
    const device = virtioMemOf(config);
    const hotplug = device && !virtioMemOf(live) ? [`hotplugMemory: none now, ${formatKiB(device.sizeKiB)} after reboot`] : [];
    return [...rows.filter((row) => row[4]).map(([name, now, next, show]) => `${name}: ${show(now)} now, ${show(next)} after reboot`), ...hotplug];
}
