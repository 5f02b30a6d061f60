/**
 * The safety rules of tuning a running guest: never a limit that kills the guest, never a pin to
 * a CPU the host does not have online, never a value libvirt refuses half way. What the inputs
 * alone tell is refused at `check` (so `pulumi preview` shows it); what needs the host and the
 * domain (its memory ceiling, its vCPUs, the host's CPUs) at apply, before anything changes.
 */
import type { MemoryTune } from "./contract";
import { formatCpuList, parseCpuList } from "./cpu-list";
import type { DesiredResources, MemoryGrowth } from "./domain-resources-plan";
import { BLKIO_WEIGHT_RANGE, limitKiB, limitOrInfinity, MEMTUNE_FIELDS, SCHED_FIELDS, Setting, UNLIMITED } from "./domain-tuning";
import { InputError } from "./errors";
import { shellQuote } from "./quoting";
import { UNKNOWN_VALUE } from "./rules/rule-table";
import { formatKiB, parseMemoryKiB } from "./units";
import type { CheckFailure } from "./validation";
import type { Virsh } from "./virsh/virsh";
import type { DomainXml } from "./xml/domain-xml";

/**
 * QEMU's own memory beside the guest's, which a hard limit must leave room for. 1 GiB: the
 * allowance libvirt itself adds to the guest's memory where it must bound what a QEMU process
 * holds (qemuDomainGetMemLockLimitBytes: the guest's memory + 1 GiB), and libvirt's docs warn that
 * a hard limit guessed too low gets QEMU killed, so the figure errs high.
 */
export const QEMU_OVERHEAD_KIB = 1024 * 1024;
/**
 * Room a hard limit lowered on the running QEMU must leave above what it holds now (dommemstat's
 * rss, QEMU's resident memory): the kernel charges the cgroup for more than that (kernel memory on
 * cgroup v2) and the guest keeps allocating while the apply runs. Under the limit the kernel first
 * reclaims, then kills QEMU (v2) or refuses the write (v1). Measured on pll-tn-bb (busybox, TCG,
 * 256 of 512 MiB, rig host cgroup v1): rss 157700 KiB, the cgroup's usage 136764 KiB (anon 135004,
 * cache 0, kernel 1508), the lowest hard limit v1 took 136800 KiB; on pll-deb2 rss 320816 KiB, usage
 * 372960 KiB of which 72752 KiB page cache (reclaimable), kernel 1812 KiB. 64 MiB is some 35 times the
 * kernel memory seen and a quarter of the busybox guest's whole memory.
 */
export const QEMU_USAGE_MARGIN_KIB = 64 * 1024;
/** Under TCG (domain type 'qemu') QEMU also fills a translation cache: `<tcg><tb-cache>`, else QEMU's default, 1 GiB on a 64-bit host. */
export const TCG_DEFAULT_TB_CACHE_KIB = 1024 * 1024;

interface Overhead {
    kib: number;
    /** Its parts, in words. */
    parts: string;
}

/** The overhead of the domain's QEMU (at check, without the domain: QEMU's own part alone). */
export function qemuOverhead(xml?: DomainXml): Overhead {
    if (xml?.type !== "qemu") return { kib: QEMU_OVERHEAD_KIB, parts: `${formatKiB(QEMU_OVERHEAD_KIB)} for QEMU itself` };
    const cache = xml.tbCacheKiB ?? TCG_DEFAULT_TB_CACHE_KIB;
    return { kib: QEMU_OVERHEAD_KIB + cache, parts: `${formatKiB(QEMU_OVERHEAD_KIB)} for QEMU itself + ${formatKiB(cache)} of TCG translation cache` };
}

/** The refusal of a hard limit below the guest's ceiling plus QEMU's overhead; undefined when it leaves room. */
function hardLimitTooLow(domain: string, hardKiB: number, ceilingKiB: number, overhead: Overhead, ceilingWords: string, unmanaged?: Unmanaged): string | undefined {
    const needed = ceilingKiB + overhead.kib;
    if (hardKiB >= needed) return undefined;
    const fix = unmanaged === undefined
        ? `set memoryTune.hardLimit to at least ${formatKiB(needed)}, or "${UNLIMITED}", or leave it out`
        : `set memoryTune.hardLimit to at least ${formatKiB(needed)} or "${UNLIMITED}" (or raise it by hand: ${unmanaged.byHand}), or ask for less memory`;
    return `${unmanaged?.words ?? "memoryTune.hardLimit"} ${formatKiB(hardKiB)} on domain '${domain}' is below what its QEMU can use: ${ceilingWords} ${formatKiB(ceilingKiB)} ` +
        `+ QEMU's overhead ${formatKiB(overhead.kib)} (${overhead.parts}) = ${formatKiB(needed)}; under it the kernel kills QEMU, and the guest with it, ` +
        `once the guest uses its memory. Fix: ${fix}`;
}

/** A limit the inputs do not manage: whose it is, in words, and the virsh command that raises it by hand. */
interface Unmanaged {
    words: string;
    byHand: string;
}

const CEILING_WORDS = "its memory ceiling (libvirt's <memory>, a virtio-mem device's full size included)";

/** cpu.weight's range (virCgroupV2SetCpuShares), which libvirt checks only when the guest starts. */
export const CGROUP_V2_SHARES = { min: 1, max: 10000 } as const;

/** On cgroup v2, the refusal of a soft limit (memory.high) below what QEMU can use; undefined when it leaves room. */
function softLimitThrottles(domain: string, softKiB: number, ceilingKiB: number, overhead: Overhead, unmanaged?: Unmanaged): string | undefined {
    const needed = ceilingKiB + overhead.kib;
    if (softKiB >= needed) return undefined;
    return `${unmanaged?.words ?? "memoryTune.softLimit"} ${formatKiB(softKiB)} on domain '${domain}' is below what its QEMU can use on this cgroup v2 host: ${CEILING_WORDS} ` +
        `${formatKiB(ceilingKiB)} + QEMU's overhead ${formatKiB(overhead.kib)} = ${formatKiB(needed)}; libvirt writes it to memory.high, where the kernel throttles QEMU ` +
        `(the guest stalls) once it uses more. Fix: set memoryTune.softLimit to at least ${formatKiB(needed)}, or "${UNLIMITED}"`;
}

type Limits = Partial<Record<keyof MemoryTune, number | typeof UNLIMITED>>;

const words = (limit: number | typeof UNLIMITED | undefined): string => (typeof limit === "number" ? formatKiB(limit) : UNLIMITED);

/** The refusal of limits libvirt would refuse (or that make no sense together), `where` naming whose they are; undefined when they fit. */
function limitOrderProblem(domain: string, limits: Limits, where: string): { path: string; reason: string } | undefined {
    const { hardLimit, softLimit, swapHardLimit } = limits;
    // An unset (unlimited) soft or swap-hard limit fits any hard limit.
    if (typeof swapHardLimit === "number" && swapHardLimit < limitOrInfinity(hardLimit)) {
        return { path: "memoryTune.swapHardLimit", reason: `memoryTune.swapHardLimit ${words(swapHardLimit)} on domain '${domain}' is below the hard limit ${words(hardLimit)}${where}: ` +
            `libvirt requires the swap-hard limit (memory plus swap on cgroup v1, swap alone on v2) to be at least the hard limit. Fix: raise swapHardLimit to at least ${words(hardLimit)}, or lower hardLimit` };
    }
    if (typeof softLimit === "number" && softLimit > limitOrInfinity(hardLimit)) {
        return { path: "memoryTune.softLimit", reason: `memoryTune.softLimit ${words(softLimit)} on domain '${domain}' is above the hard limit ${words(hardLimit)}${where}: ` +
            `a soft limit above the hard one never applies. Fix: set softLimit to at most ${words(hardLimit)}` };
    }
    return undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
    return value !== null && typeof value === "object" && !Array.isArray(value);
}

function unknownFields(value: Record<string, unknown>, known: readonly string[]): string | undefined {
    const unknown = Object.keys(value).filter((k) => !known.includes(k));
    return unknown.length > 0 ? `unknown field ${unknown.join(", ")}; use ${known.join(", ")}` : undefined;
}

const known = (value: unknown): boolean => value !== undefined && value !== UNKNOWN_VALUE;

/** A whole number within a range (or the no-cap value), in words when it is not. */
function rangeProblem(value: unknown, min: number, max: number, noCap?: number): string | undefined {
    if (typeof value === "number" && Number.isSafeInteger(value) && ((value >= min && value <= max) || value === noCap)) return undefined;
    return `${JSON.stringify(value)} is outside libvirt's range ${min}–${max}${noCap === undefined ? "" : ` (or ${noCap}: no cap)`}`;
}

function cpuListProblem(value: unknown): string | undefined {
    if (typeof value !== "string") return `${JSON.stringify(value)} must be a CPU list like "0-3,6"`;
    try {
        parseCpuList(value);
        return undefined;
    } catch (error) {
        return (error as Error).message;
    }
}

function checkFailure(domain: string, property: string, reason: string): CheckFailure {
    return { property, reason: `${property}: ${reason} (domain '${domain}')` };
}

/** What `check` refuses of cpuTune, memoryTune and blkioWeight: each failure names the domain, the value and the fix. */
export function tuningCheckFailures(inputs: Record<string, unknown>): CheckFailure[] {
    const domain = String(inputs.domain);
    const failures: CheckFailure[] = [];
    const fail = (property: string, reason: string) => failures.push(checkFailure(domain, property, reason));
    const { cpuTune, memoryTune, blkioWeight } = inputs;
    if (known(cpuTune)) {
        if (!isPlainObject(cpuTune)) fail("cpuTune", "must be an object { shares, period, quota, emulatorPeriod, emulatorQuota, vcpuPins, emulatorPin }");
        else {
            const extra = unknownFields(cpuTune, [...SCHED_FIELDS.map((f) => f.field), "vcpuPins", "emulatorPin"]);
            if (extra) fail("cpuTune", extra);
            for (const { field, min, max, noCap } of SCHED_FIELDS) {
                const problem = known(cpuTune[field]) ? rangeProblem(cpuTune[field], min, max, noCap) : undefined;
                if (problem) fail(`cpuTune.${field}`, `${problem}; set a whole number within it`);
            }
            const pins = cpuTune.vcpuPins;
            if (known(pins) && !isPlainObject(pins)) fail("cpuTune.vcpuPins", `must map vCPU numbers to host CPU lists, e.g. { "0": "2-3" }`);
            else if (known(pins)) {
                const maxVcpus = typeof inputs.maxVcpus === "number" ? inputs.maxVcpus : undefined;
                for (const [vcpu, cpus] of Object.entries(pins as Record<string, unknown>)) {
                    const path = `cpuTune.vcpuPins.${vcpu}`;
                    if (!/^(0|[1-9]\d*)$/.test(vcpu)) fail(path, `${JSON.stringify(vcpu)} is not a vCPU number as libvirt writes it; the keys are vCPU numbers from 0, without leading zeros`);
                    else if (maxVcpus !== undefined && Number(vcpu) >= maxVcpus) {
                        fail(path, `vCPU ${vcpu} does not exist: maxVcpus is ${maxVcpus}, so the vCPUs are 0–${maxVcpus - 1}. Fix: pin only those, or raise maxVcpus`);
                    }
                    const problem = known(cpus) ? cpuListProblem(cpus) : undefined;
                    if (problem) fail(path, problem);
                }
            }
            const emulator = known(cpuTune.emulatorPin) ? cpuListProblem(cpuTune.emulatorPin) : undefined;
            if (emulator) fail("cpuTune.emulatorPin", emulator);
        }
    }
    if (known(memoryTune)) failures.push(...memoryTuneFailures(inputs, domain));
    if (known(blkioWeight)) {
        const problem = rangeProblem(blkioWeight, BLKIO_WEIGHT_RANGE.min, BLKIO_WEIGHT_RANGE.max);
        if (problem) fail("blkioWeight", `${problem}; set a whole number within it`);
    }
    return failures;
}

function memoryTuneFailures(inputs: Record<string, unknown>, domain: string): CheckFailure[] {
    const memoryTune = inputs.memoryTune;
    const at = (property: string, reason: string): CheckFailure => checkFailure(domain, property, reason);
    if (!isPlainObject(memoryTune)) return [at("memoryTune", "must be an object { hardLimit, softLimit, swapHardLimit }")];
    const failures: CheckFailure[] = [];
    const extra = unknownFields(memoryTune, MEMTUNE_FIELDS.map((f) => f.field));
    if (extra) failures.push(at("memoryTune", extra));
    const limits: Limits = {};
    for (const { field } of MEMTUNE_FIELDS) {
        const value = memoryTune[field];
        if (!known(value)) continue;
        try {
            if (typeof value !== "string" && typeof value !== "number") throw new RangeError(`memoryTune.${field}: must be a size like "2GiB" or "${UNLIMITED}"`);
            limits[field] = limitKiB(value, `memoryTune.${field}`);
        } catch (error) {
            failures.push(at(`memoryTune.${field}`, (error as Error).message.replace(`memoryTune.${field}: `, "")));
        }
    }
    if (failures.length > 0) return failures;
    // Without a hard limit in the inputs, the one to compare with is the domain's: checked at apply.
    const order = limits.hardLimit === undefined ? undefined : limitOrderProblem(domain, limits, "");
    if (order) failures.push({ property: order.path, reason: order.reason });
    // The inputs alone prove a lower bound of the ceiling: the memory they ask for.
    const sizes = [inputs.memory, inputs.maxMemory].flatMap((v) => {
        try {
            return known(v) && (typeof v === "string" || typeof v === "number") ? [parseMemoryKiB(v, "memory")] : [];
        } catch {
            return [];
        }
    });
    const tooLow = typeof limits.hardLimit === "number" && sizes.length > 0
        ? hardLimitTooLow(domain, limits.hardLimit, Math.max(...sizes), qemuOverhead(), "the memory the inputs ask for")
        : undefined;
    if (tooLow) failures.push({ property: "memoryTune.hardLimit", reason: tooLow });
    return failures;
}

/**
 * The most memory a half's QEMU can hold once the sizes asked for land. The config's: a maxMemory
 * asked for replaces its `<memory>` (setmaxmem lands only through a boot); with a memory device
 * (its size counts in `<memory>`) both count, erring high. The running guest's `<memory>` stays
 * until its next boot, so there a maxMemory asked for lowers nothing.
 */
function memoryCeilingKiB(xml: DomainXml, desired: DesiredResources, half: "config" | "live"): number {
    const maximum = half === "config" && xml.memoryDevices.length === 0 && desired.maxMemoryKiB !== undefined
        ? desired.maxMemoryKiB
        : Math.max(xml.memoryKiB, half === "config" ? desired.maxMemoryKiB ?? 0 : 0);
    return Math.max(maximum, desired.memoryKiB ?? 0);
}

/** Whether the apply sets a memory limit of the half to another value than it has. */
export function setsMemoryLimit(xml: DomainXml, settings: readonly Setting[]): boolean {
    return settings.some((s) => s.path.startsWith("memoryTune.") && s.read(xml) !== s.value);
}

/** What the domain is about to be: its XML now (a hotplugMemory device counted) and the sizes asked for. */
export interface TuningTarget {
    config: DomainXml;
    /** The running domain's XML, when the live half changes now. */
    live?: DomainXml;
    desired: DesiredResources;
    /** What the plan raises of each half's memory (domain-resources-plan's memoryGrowth). */
    growth: MemoryGrowth;
    /** Whether the apply (re)starts QEMU (a reboot): it then starts under the config's limits, whatever it raises. */
    restarts?: boolean;
    hostCpus?: readonly number[];
    /** Whether the host runs cgroup v2; undefined when nothing asked for depends on it. */
    cgroupV2?: boolean;
    /** What the running QEMU holds now (dommemstat rss), in KiB; undefined when unknown. */
    qemuRssKiB?: number;
}

/** The refusal of a hard limit lowered on the running QEMU below what it holds now plus the margin; undefined when it leaves room. */
function hardLimitUnderUsage(domain: string, hardKiB: number, rssKiB: number): string | undefined {
    const needed = rssKiB + QEMU_USAGE_MARGIN_KIB;
    if (hardKiB >= needed) return undefined;
    return `memoryTune.hardLimit ${formatKiB(hardKiB)} on domain '${domain}' is below what its running QEMU holds now: its resident memory (virsh dommemstat rss) ` +
        `${formatKiB(rssKiB)} + a margin of ${formatKiB(QEMU_USAGE_MARGIN_KIB)} = ${formatKiB(needed)}; lowered under it, the kernel reclaims and then kills QEMU (cgroup v2) ` +
        `or refuses the limit half way (v1). Fix: set memoryTune.hardLimit to at least ${formatKiB(needed)}, or "${UNLIMITED}"`;
}

/** The virsh command that sets a half's limit by hand (a swap-hard limit below it raised along, as libvirt requires). */
function memtuneByHand(domain: string, xml: DomainXml, option: "--hard-limit" | "--soft-limit", kib: number, half: "config" | "live"): string {
    const swapHard = xml.tuning.memtuneKiB.swap_hard_limit;
    const swap = option === "--hard-limit" && typeof swapHard === "number" && swapHard < kib ? ` --swap-hard-limit ${kib}` : "";
    return `virsh memtune ${shellQuote(domain)} ${option} ${kib}${swap} --${half}`;
}

/**
 * The checks that need the domain and the host, before anything changes: pins on online host CPUs
 * and existing vCPUs, a hard limit above the guest's ceiling plus QEMU's overhead, and limits in an
 * order libvirt takes with the ones already set. Throws an InputError naming the value and the fix;
 * returns the warnings of a limit not managed and too low, which this apply does not make worse.
 */
export function checkTuningOnHost(virsh: Virsh, settings: readonly Setting[], target: TuningTarget): string[] {
    const { config, live, desired, hostCpus, cgroupV2, growth } = target;
    const warnings: string[] = [];
    const domain = virsh.domain;
    const refuse = (path: string, reason: string): never => {
        const [summary, fix] = reason.split(" Fix: ");
        throw new InputError(`${summary}; nothing was changed`, virsh.context(path), fix ?? "");
    };
    const vcpuLimit = Math.min(desired.maxVcpus ?? config.maxVcpus, live?.maxVcpus ?? Infinity);
    for (const s of settings.filter((x) => x.path.startsWith("cpuTune.vcpuPins.") || x.path === "cpuTune.emulatorPin")) {
        const vcpu = s.path.startsWith("cpuTune.vcpuPins.") ? Number(s.path.split(".")[2]) : undefined;
        if (vcpu !== undefined && vcpu >= vcpuLimit) {
            refuse(s.path, `${s.path}: vCPU ${vcpu} does not exist on domain '${domain}': it has at most ${vcpuLimit} vCPUs (0–${vcpuLimit - 1}). Fix: pin only vCPUs 0–${vcpuLimit - 1}, or raise maxVcpus first`);
        }
        const offline = hostCpus ? parseCpuList(String(s.value)).filter((cpu) => !hostCpus.includes(cpu)) : [];
        if (hostCpus && offline.length > 0) {
            refuse(s.path, `${s.path} "${s.value}" on domain '${domain}' names host CPU ${formatCpuList(offline)}, which the host does not have online ` +
                `(online: ${formatCpuList(hostCpus)}). Fix: pin to CPUs among ${formatCpuList(hostCpus)}`);
        }
    }
    const wanted: Limits = Object.fromEntries(settings.filter((s) => s.path.startsWith("memoryTune.")).map((s) => [s.path.split(".")[1], s.value]));
    // Each half runs under its own limits: the ones asked for, else the ones it has (set by hand,
    // or by inputs no longer managing them), which the new memory must fit under as well.
    for (const [where, xml, half] of [["config", config, "config"], ["running domain", live, "live"]] as const) {
        if (!xml) continue;
        const ceiling = memoryCeilingKiB(xml, desired, half);
        const overhead = qemuOverhead(xml);
        const unmanaged = (field: keyof MemoryTune, name: string, option: "--hard-limit" | "--soft-limit"): Unmanaged | undefined => (wanted[field] === undefined
            ? { words: `the ${name} the ${where} has (not managed by these inputs)`, byHand: memtuneByHand(domain, xml, option, ceiling + overhead.kib, half) }
            : undefined);
        // A limit not managed that this apply does not make matter more: warned about, and the apply goes
        // ahead. A QEMU (re)started by the apply starts under the config's limits: refused.
        const worse = growth[half] || (half === "config" && target.restarts === true) || setsMemoryLimit(xml, settings);
        const tooLowFor = (path: string, reason: string | undefined, byHand: Unmanaged | undefined): void => {
            if (!reason) return;
            if (!byHand || worse) return refuse(path, reason);
            warnings.push(`${reason.split(" Fix: ")[0]} This apply goes ahead: it neither raises the memory the guest can use, nor sets a memory limit, nor starts the guest. ` +
                `Fix: ${byHand.byHand}, or manage ${path}`);
        };
        const hardUnmanaged = unmanaged("hardLimit", "hard limit", "--hard-limit");
        const hard = wanted.hardLimit ?? xml.tuning.memtuneKiB.hard_limit;
        tooLowFor("memoryTune.hardLimit", typeof hard === "number" ? hardLimitTooLow(domain, hard, ceiling, overhead, CEILING_WORDS, hardUnmanaged) : undefined, hardUnmanaged);
        // On cgroup v2 libvirt writes the soft limit to memory.high, where the kernel throttles QEMU.
        const softUnmanaged = unmanaged("softLimit", "soft limit", "--soft-limit");
        const soft = wanted.softLimit ?? xml.tuning.memtuneKiB.soft_limit;
        tooLowFor("memoryTune.softLimit", cgroupV2 && typeof soft === "number" ? softLimitThrottles(domain, soft, ceiling, overhead, softUnmanaged) : undefined, softUnmanaged);
    }
    // A hard limit lowered on the running QEMU must also leave room above what it holds now.
    const lowered = typeof wanted.hardLimit === "number" && live && wanted.hardLimit < limitOrInfinity(live.tuning.memtuneKiB.hard_limit) ? wanted.hardLimit : undefined;
    if (lowered !== undefined && target.qemuRssKiB === undefined) {
        refuse("memoryTune.hardLimit", `memoryTune.hardLimit ${formatKiB(lowered)} would lower the limit of domain '${domain}''s running QEMU, but what it holds now ` +
            `(virsh dommemstat rss) could not be read, so the limit might be below it. Fix: run pulumi up again (its read has it), or keep the running domain's limit (${words(live?.tuning.memtuneKiB.hard_limit)})`);
    }
    const underUsage = lowered !== undefined && target.qemuRssKiB !== undefined ? hardLimitUnderUsage(domain, lowered, target.qemuRssKiB) : undefined;
    if (underUsage) refuse("memoryTune.hardLimit", underUsage);
    const shares = settings.find((s) => s.path === "cpuTune.shares")?.value;
    if (cgroupV2 && typeof shares === "number" && (shares < CGROUP_V2_SHARES.min || shares > CGROUP_V2_SHARES.max)) {
        refuse("cpuTune.shares", `cpuTune.shares ${shares} on domain '${domain}' is outside ${CGROUP_V2_SHARES.min}–${CGROUP_V2_SHARES.max}, the range of cpu.weight on this cgroup v2 host: ` +
            `libvirt takes it into the config, but the guest then fails to start. Fix: set shares within ${CGROUP_V2_SHARES.min}–${CGROUP_V2_SHARES.max}`);
    }
    for (const [where, xml] of [["config", config], ["running domain", live]] as const) {
        if (!xml) continue;
        const current: Limits = Object.fromEntries(MEMTUNE_FIELDS.map(({ field, xml: element }) => [field, xml.tuning.memtuneKiB[element] ?? UNLIMITED]));
        const order = limitOrderProblem(domain, { ...current, ...wanted }, ` (with the limits the ${where} has now)`);
        if (order) refuse(order.path, order.reason);
    }
    return warnings;
}
