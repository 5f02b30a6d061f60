/** DomainResources: memory, vCPUs and tuning of an existing domain. */
import { canonicalCpuList } from "../cpu-list";
import { limitKiB, MEMTUNE_FIELDS, normalizePins, SCHED_FIELDS } from "../domain-tuning";
import { QEMU_USAGE_MARGIN_KIB } from "../tuning-checks";
import { formatKiB, parseMemoryKiB } from "../units";
import type { MemorySize } from "../units";
import { PLACEMENT_PROPERTIES, PLACEMENT_RULES } from "./connection-rules";
import { ChangeRule, PropertySpec, RuleTable, valueAt, Values } from "./rule-table";

const kib = (v: unknown): number => parseMemoryKiB(v as MemorySize, "memory");

/** The maximum the running guest has now (reported), which bounds what can change live. */
const liveMaxMemoryKiB = (olds: Values): number => Number(olds.maxMemoryKiB ?? Infinity);
const liveMaxVcpus = (olds: Values): number => Number(olds.maximumVcpus ?? Infinity);
/** The running count: with the guest agent, the CPUs online in the guest (offlined ones stay plugged). */
const oldVcpus = (olds: Values): number => Number(olds.guestVcpus ?? olds.currentVcpus ?? olds.vcpus);

/** A size or count dropped from the inputs is no longer managed: the domain keeps what it has. */
const unmanagedWhenRemoved = (path: string) => ({
    path, when: "removed from the inputs (no longer managed)",
    applies: (_olds: Values, news: Values) => news[path] === undefined,
    running: "none" as const, shutOff: "none" as const, how: "nothing; the domain keeps its value",
});

/** Every tuning value: its path, how it compares, and the virsh that sets it (running: --live --config; shut off: --config). */
const TUNING: ReadonlyArray<PropertySpec & { how: string; note?: string }> = [
    ...SCHED_FIELDS.map(({ field, param }) => ({ path: `cpuTune.${field}`, how: `virsh schedinfo --set ${param}=N` })),
    { path: "cpuTune.vcpuPins", normalize: normalizePins, how: "virsh vcpupin DOMAIN VCPU CPULIST", note: "one call for each vCPU whose pin differs; a CPU the host has not online is refused" },
    { path: "cpuTune.emulatorPin", normalize: (v) => (v === undefined ? undefined : canonicalCpuList(String(v))), how: "virsh emulatorpin DOMAIN CPULIST",
        note: "a CPU the host has not online is refused" },
    ...MEMTUNE_FIELDS.map(({ field, flag }) => ({
        path: `memoryTune.${field}`, normalize: (v: unknown) => (v === undefined ? undefined : limitKiB(v as MemorySize, field)),
        how: `virsh memtune ${flag} KiB (-1: unlimited)`,
        note: `every limit that changes in one call (libvirt orders hard and swap-hard limits safely), before the memory changes when it raises the hard limit, else after them${field === "hardLimit" ? `; below the guest's memory ceiling + QEMU's overhead, or lowered live below what QEMU holds (dommemstat rss) + ${formatKiB(QEMU_USAGE_MARGIN_KIB)}, it is refused` : ""}`,
    })),
    { path: "blkioWeight", how: "virsh blkiotune --weight N" },
];

/** The pins kept are the pins they were: only vCPUs dropped from the map (or the map removed). */
const onlyPinsDropped = (olds: Values, news: Values): boolean => {
    const [before, after] = [normalizePins(valueAt(olds, "cpuTune.vcpuPins")) ?? {}, normalizePins(valueAt(news, "cpuTune.vcpuPins")) ?? {}];
    return Object.entries(after).every(([vcpu, cpus]) => before[vcpu] === cpus);
};

/** A tuning value dropped from the inputs is no longer managed (like memory); set or changed, it goes live. */
function tuningRules({ path, how, note }: { path: string; how: string; note?: string }): ChangeRule[] {
    const removed: ChangeRule = path === "cpuTune.vcpuPins"
        ? { path, when: "vCPUs dropped from the map, or the map removed (no longer managed)", applies: onlyPinsDropped,
            running: "none", shutOff: "none", how: "nothing; those vCPUs keep their pins" }
        : { path, when: "removed from the inputs (no longer managed)", applies: (_olds, news) => valueAt(news, path) === undefined,
            running: "none", shutOff: "none", how: "nothing; the domain keeps its value" };
    return [removed, { path, when: path === "cpuTune.vcpuPins" ? "a vCPU's pin set or changed" : "set or changed", running: "live", shutOff: "config",
        how: `${how} --live --config (shut off: --config)${note ? `; ${note}` : ""}; a value changed by hand shows at refresh and is put back` }];
}

export const DOMAIN_RESOURCES_RULES: RuleTable = {
    resource: "DomainResources",
    properties: [
        ...PLACEMENT_PROPERTIES,
        { path: "memory", normalize: kib },
        { path: "maxMemory", normalize: kib },
        { path: "vcpus" },
        { path: "maxVcpus" },
        { path: "hotplugMemory", normalize: kib },
        { path: "rebootPolicy", normalize: (v) => v ?? "never" },
        { path: "shutdownTimeout" },
        { path: "forceOff" },
        { path: "balloonTimeout" },
        ...TUNING.map(({ path, normalize }) => ({ path, normalize })),
    ],
    rules: [
        ...PLACEMENT_RULES,
        ...["memory", "maxMemory", "vcpus", "maxVcpus", "hotplugMemory"].map(unmanagedWhenRemoved),
        { path: "memory", when: "up or down within the current maximum",
            applies: (olds, news) => kib(news.memory) <= liveMaxMemoryKiB(olds),
            running: "live", shutOff: "config",
            how: "virsh setmem --live --config; the part above the boot maximum: update-memory-device --requested-size --live, then --config" },
        { path: "memory", when: "above the current maximum",
            running: "reboot", shutOff: "config", how: "virsh setmaxmem --config, setmem --config, then a reboot" },
        { path: "maxMemory", when: "any change",
            running: "reboot", shutOff: "config", how: "virsh setmaxmem --config, then a reboot" },
        { path: "vcpus", when: "up, within the current maximum",
            applies: (olds, news) => Number(news.vcpus) >= oldVcpus(olds) && Number(news.vcpus) <= liveMaxVcpus(olds),
            running: "live", shutOff: "config", how: "virsh setvcpus --live --config; with the guest agent, then setvcpus --guest (the guest onlines them)" },
        { path: "vcpus", when: "down, while the guest agent answered (at the last read or refresh)",
            applies: (olds, news) => olds.guestAgent === true && Number(news.vcpus) <= liveMaxVcpus(olds),
            running: "live", shutOff: "config",
            how: "virsh setvcpus --guest (the guest offlines them; they stay plugged until the next boot), then setvcpus --config" },
        { path: "vcpus", when: "down without the guest agent, or above the current maximum",
            running: "reboot", shutOff: "config", how: "virsh setvcpus --config, then a reboot" },
        { path: "maxVcpus", when: "any change",
            running: "reboot", shutOff: "config", how: "virsh setvcpus --maximum --config, then a reboot" },
        { path: "hotplugMemory", when: "the domain's virtio-mem device already has this size",
            applies: (olds, news) => kib(news.hotplugMemory) === Number(olds.hotplugSizeKiB),
            running: "none", shutOff: "none", how: "nothing" },
        { path: "hotplugMemory", when: "added to a domain without a virtio-mem device",
            running: "reboot", shutOff: "config",
            how: "virsh define (maxMemory slots, a NUMA cell with the boot memory, the device), then a reboot; memory within the new ceiling is live from then on" },
        ...["rebootPolicy", "shutdownTimeout", "forceOff", "balloonTimeout"].map((path) => ({
            path, when: "any change", running: "none" as const, shutOff: "none" as const, how: "stored; used by the next change",
        })),
        ...TUNING.flatMap(tuningRules),
    ],
};
