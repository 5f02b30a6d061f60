/**
 * Tuning a running guest, declared once: each setting of `cpuTune`, `memoryTune` and
 * `blkioWeight`, the XML element that holds it and the virsh command that sets it. The rule rows
 * (rules/domain-resources-rules.ts), the plan (which commands, for which half), the verify and
 * what a refresh reports all come from these lists. The safety checks are in tuning-checks.ts.
 */
import type { CpuTune, DomainResourcesInputs, DomainTuning, MemoryTune } from "./contract";
import { canonicalCpuList, formatCpuList } from "./cpu-list";
import { formatKiB, MemorySize, parseMemoryKiB } from "./units";
import type { DomainXml } from "./xml/domain-xml";
import type { CputuneNumber, MemtuneSize } from "./xml/tuning-xml";

export type SchedField = Exclude<keyof CpuTune, "vcpuPins" | "emulatorPin">;

/** The scheduler values: input field, `<cputune>` element, `schedinfo` parameter and libvirt's range (period and quota in µs). */
export const SCHED_FIELDS: ReadonlyArray<{ field: SchedField; xml: CputuneNumber; param: string; min: number; max: number; noCap?: number }> = [
    { field: "shares", xml: "shares", param: "cpu_shares", min: 2, max: 262144 },
    { field: "period", xml: "period", param: "vcpu_period", min: 1000, max: 1000000 },
    // -1 (and an absent <quota>) is no cap.
    { field: "quota", xml: "quota", param: "vcpu_quota", min: 1000, max: 17592186044415, noCap: -1 },
    { field: "emulatorPeriod", xml: "emulator_period", param: "emulator_period", min: 1000, max: 1000000 },
    { field: "emulatorQuota", xml: "emulator_quota", param: "emulator_quota", min: 1000, max: 17592186044415, noCap: -1 },
];

/** The memory limits: input field, `<memtune>` element and `memtune` option. */
export const MEMTUNE_FIELDS: ReadonlyArray<{ field: keyof MemoryTune; xml: MemtuneSize; flag: string }> = [
    { field: "hardLimit", xml: "hard_limit", flag: "--hard-limit" },
    { field: "softLimit", xml: "soft_limit", flag: "--soft-limit" },
    { field: "swapHardLimit", xml: "swap_hard_limit", flag: "--swap-hard-limit" },
];

export const BLKIO_WEIGHT_RANGE = { min: 100, max: 1000 } as const;

/** A memory limit that is not set (libvirt then leaves the element out of the XML). */
export const UNLIMITED = "unlimited";

/** A limit in KiB, or UNLIMITED; throws (a RangeError naming `field`) on a size parseMemoryKiB refuses or one libvirt cannot hold. */
export function limitKiB(value: MemorySize, field: string): number | typeof UNLIMITED {
    if (value === UNLIMITED) return UNLIMITED;
    const kib = parseMemoryKiB(value, field);
    // libvirt's limits are KiB below 2^53 - 1 (VIR_DOMAIN_MEMORY_PARAM_UNLIMITED, which means no limit); above it no number compares exactly.
    if (kib >= Number.MAX_SAFE_INTEGER) throw new RangeError(`${field}: ${JSON.stringify(value)} is beyond libvirt's largest limit (2^53 - 2 KiB); for no limit write "${UNLIMITED}"`);
    return kib;
}

/** The pins map as compared: vCPU order, canonical CPU lists. */
export function normalizePins(value: unknown): Record<string, string> | undefined {
    if (value === null || typeof value !== "object") return undefined;
    return Object.fromEntries(Object.entries(value as Record<string, string>).sort(([a], [b]) => Number(a) - Number(b))
        .map(([vcpu, cpus]) => [vcpu, canonicalCpuList(String(cpus))]));
}

type TuneValue = number | string;

/** One managed value: where it is in the inputs, what it should be (canonical), how to read it and set it. */
export interface Setting {
    /** Its path in the inputs ("cpuTune.vcpuPins.0"), for messages and the refresh. */
    path: string;
    value: TuneValue;
    /** What the domain's XML holds for it, canonical (an absent element as what it means); undefined when that is unknown. */
    read: (xml: DomainXml, hostCpus?: readonly number[]) => TuneValue | undefined;
    /** The command that sets it ("schedinfo", "vcpupin 0"): settings of one command and one half go in one call. */
    command: string;
    /** That command's arguments for this value. */
    args: string[];
}

/** A vCPU's (or the emulator's) pin: its own, else the domain's `<vcpu cpuset>`, else every online host CPU. */
function pinOf(own: string | undefined, xml: DomainXml, hostCpus?: readonly number[]): string | undefined {
    const list = own ?? xml.tuning.vcpuCpuset;
    if (list !== undefined) return canonicalCpuList(list);
    return hostCpus ? formatCpuList(hostCpus) : undefined;
}

/** The settings the inputs manage, in declaration order; throws on a value `check` refuses. */
export function tuningSettings(inputs: Pick<DomainResourcesInputs, "cpuTune" | "memoryTune" | "blkioWeight">): Setting[] {
    const settings: Setting[] = [];
    const cpu = inputs.cpuTune ?? {};
    for (const { field, xml, param, noCap } of SCHED_FIELDS) {
        const value = cpu[field];
        if (value === undefined) continue;
        settings.push({ path: `cpuTune.${field}`, value, read: (x) => x.tuning.cputune[xml] ?? noCap, command: "schedinfo", args: [`--set=${param}=${value}`] });
    }
    for (const [vcpu, cpus] of Object.entries(normalizePins(cpu.vcpuPins) ?? {})) {
        settings.push({ path: `cpuTune.vcpuPins.${vcpu}`, value: cpus, read: (x, host) => pinOf(x.tuning.vcpupins[vcpu], x, host),
            command: `vcpupin ${vcpu}`, args: [`--vcpu=${vcpu}`, `--cpulist=${cpus}`] });
    }
    if (cpu.emulatorPin !== undefined) {
        const cpus = canonicalCpuList(cpu.emulatorPin);
        settings.push({ path: "cpuTune.emulatorPin", value: cpus, read: (x, host) => pinOf(x.tuning.emulatorpin, x, host), command: "emulatorpin", args: [`--cpulist=${cpus}`] });
    }
    for (const { field, xml, flag } of MEMTUNE_FIELDS) {
        const given = inputs.memoryTune?.[field];
        if (given === undefined) continue;
        const value = limitKiB(given, `memoryTune.${field}`);
        // virsh memtune takes KiB; a negative value is unlimited.
        settings.push({ path: `memoryTune.${field}`, value, read: (x) => x.tuning.memtuneKiB[xml] ?? UNLIMITED, command: "memtune",
            args: [`${flag}=${value === UNLIMITED ? -1 : value}`] });
    }
    if (inputs.blkioWeight !== undefined) {
        settings.push({ path: "blkioWeight", value: inputs.blkioWeight, read: (x) => x.tuning.blkioWeight, command: "blkiotune", args: [`--weight=${inputs.blkioWeight}`] });
    }
    return settings;
}

/** A limit as a number to compare: unlimited (or unset) is Infinity. */
export function limitOrInfinity(limit: TuneValue | undefined): number {
    return typeof limit === "number" ? limit : Infinity;
}

/** The tuning calls of an apply, split around the memory and vCPU commands. */
export interface TuningPlan {
    /** A memtune that raises a hard limit: before the memory grows under the old one. */
    beforeMemory: string[][];
    /** Everything else, a lowered limit included: after the memory shrank. */
    afterMemory: string[][];
}

/**
 * The virsh commands that bring each half to the settings: one call per command, with the
 * settings that differ in either half and the flags of every half where one differs (setting a
 * value a half already holds is no change). `live` is undefined when only the config is to change
 * (shut off, or a reboot brings the config live). One memtune call holds every limit that changes,
 * so libvirt orders them (a hard limit lowered before, raised after the swap-hard limit) and never
 * fills one from the other half's old value between two calls.
 */
export function planTuning(domain: string, settings: readonly Setting[], config: DomainXml, live: DomainXml | undefined, hostCpus?: readonly number[]): TuningPlan {
    const calls = new Map<string, { args: string[]; flags: Set<string>; raisesLimit: boolean }>();
    for (const setting of settings) {
        const differing = ([["--live", live], ["--config", config]] as const).filter(([, xml]) => xml && setting.read(xml, hostCpus) !== setting.value);
        if (differing.length === 0) continue;
        const call = calls.get(setting.command) ?? { args: [], flags: new Set<string>(), raisesLimit: false };
        call.args.push(...setting.args);
        for (const [flag] of differing) call.flags.add(flag);
        call.raisesLimit ||= setting.path === "memoryTune.hardLimit" &&
            differing.some(([, xml]) => limitOrInfinity(setting.value) > limitOrInfinity(setting.read(xml as DomainXml)));
        calls.set(setting.command, call);
    }
    const plan: TuningPlan = { beforeMemory: [], afterMemory: [] };
    for (const [command, { args, flags, raisesLimit }] of calls) {
        (raisesLimit ? plan.beforeMemory : plan.afterMemory).push([command.split(" ")[0], `--domain=${domain}`, ...args, ...["--live", "--config"].filter((f) => flags.has(f))]);
    }
    return plan;
}

/** How each half differs from the settings after an apply, in words; empty when both agree. */
export function tuningMismatches(settings: readonly Setting[], config: DomainXml, live: DomainXml | undefined, hostCpus?: readonly number[]): string[] {
    const halves: Array<[string, DomainXml | undefined]> = [["config", config], ["live", live]];
    return halves.flatMap(([where, xml]) => (xml ? settings : []).flatMap((s) => {
        const got = s.read(xml as DomainXml, hostCpus);
        return got === s.value ? [] : [`${where} ${s.path} is ${got ?? "not set"}, expected ${s.value}`];
    }));
}

/** A compared value in the inputs' form: KiB as a size, anything else as it is. */
function inputForm(path: string, value: TuneValue): TuneValue {
    return path.startsWith("memoryTune.") && typeof value === "number" ? formatKiB(value) : value;
}

function setAt(target: Record<string, unknown>, path: string, value: unknown): void {
    const keys = path.split(".");
    let node = target;
    for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
    node[keys[keys.length - 1]] = value;
}

/**
 * What a refresh reports for the managed settings, in the inputs' form: the running domain's value
 * where it differs from the one managed (a pin or limit changed live by hand), else the config's.
 * Either kind of drift then shows in the diff, and `up` puts it back. Unmanaged settings stay unset.
 */
export function refreshedTuning(olds: Pick<DomainResourcesInputs, "cpuTune" | "memoryTune" | "blkioWeight">, config: DomainXml, live: DomainXml | undefined,
    hostCpus?: readonly number[]): Pick<DomainResourcesInputs, "cpuTune" | "memoryTune" | "blkioWeight"> {
    let settings: Setting[];
    try {
        settings = tuningSettings(olds);
    } catch {
        return { cpuTune: olds.cpuTune, memoryTune: olds.memoryTune, blkioWeight: olds.blkioWeight };
    }
    // A managed group whose settings all read as unset is reported empty, never as the stored inputs.
    const out: Record<string, unknown> = { cpuTune: olds.cpuTune && {}, memoryTune: olds.memoryTune && {}, blkioWeight: undefined };
    for (const s of settings) {
        const now = live && s.read(live, hostCpus);
        const value = now !== undefined && now !== s.value ? now : s.read(config, hostCpus);
        if (value !== undefined) setAt(out, s.path, inputForm(s.path, value));
    }
    return out as Pick<DomainResourcesInputs, "cpuTune" | "memoryTune" | "blkioWeight">;
}

/** The tuning a domain's XML holds, in the inputs' form (only what is set). */
export function tuningOf(xml: DomainXml): DomainTuning {
    const { cputune, vcpupins, emulatorpin, memtuneKiB, blkioWeight } = xml.tuning;
    const cpuTune: CpuTune = {};
    for (const { field, xml: element } of SCHED_FIELDS) if (cputune[element] !== undefined) cpuTune[field] = cputune[element];
    if (Object.keys(vcpupins).length > 0) cpuTune.vcpuPins = { ...vcpupins };
    if (emulatorpin !== undefined) cpuTune.emulatorPin = emulatorpin;
    const memoryTune: MemoryTune = {};
    for (const { field, xml: element } of MEMTUNE_FIELDS) {
        const kib = memtuneKiB[element];
        if (kib !== undefined) memoryTune[field] = formatKiB(kib);
    }
    return { cpuTune, memoryTune, ...(blkioWeight === undefined ? {} : { blkioWeight }) };
}

/** Whether the inputs manage a pin (the refresh and the apply then read the host's online CPUs). */
export function managesPins(inputs: Pick<DomainResourcesInputs, "cpuTune">): boolean {
    return Object.keys(inputs.cpuTune?.vcpuPins ?? {}).length > 0 || inputs.cpuTune?.emulatorPin !== undefined;
}

/** Whether the inputs manage a value whose range depends on the host's cgroup version (the apply then reads it). */
export function managesCgroupRanges(inputs: Pick<DomainResourcesInputs, "cpuTune" | "memoryTune">): boolean {
    return inputs.cpuTune?.shares !== undefined || inputs.memoryTune?.softLimit !== undefined;
}
