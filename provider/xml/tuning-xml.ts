/**
 * A domain's tuning as its XML holds it: `<cputune>` (scheduler values, vCPU and emulator pins),
 * `<memtune>` (cgroup memory limits) and `<blkiotune><weight>`, by libvirt's own element names.
 * An element that is absent is reported absent: what that means (no cap, no limit) is the feature's call.
 */
import { attr, child, children, textOf, XmlNode } from "./xml-codec";

/** The `<cputune>` elements holding one number each. */
export const CPUTUNE_NUMBERS = ["shares", "period", "quota", "emulator_period", "emulator_quota"] as const;
/** The `<memtune>` elements holding one size each. */
export const MEMTUNE_SIZES = ["hard_limit", "soft_limit", "swap_hard_limit"] as const;

export type CputuneNumber = typeof CPUTUNE_NUMBERS[number];
export type MemtuneSize = typeof MEMTUNE_SIZES[number];

export interface TuningXml {
    cputune: Partial<Record<CputuneNumber, number>>;
    /** `<vcpupin vcpu='N' cpuset='…'/>` by vCPU index. */
    vcpupins: Record<string, string>;
    /** `<emulatorpin cpuset='…'/>`. */
    emulatorpin?: string;
    /** `<vcpu cpuset='…'>`: where every vCPU without a pin of its own may run. */
    vcpuCpuset?: string;
    memtuneKiB: Partial<Record<MemtuneSize, number>>;
    blkioWeight?: number;
}

export function readTuning(domain: XmlNode, sizeKiB: (node: XmlNode | undefined) => number): TuningXml {
    const cputune = child(domain, "cputune");
    const memtune = child(domain, "memtune");
    const number = (node: XmlNode | undefined) => (textOf(node) === undefined ? undefined : Number(textOf(node)));
    const present = <K extends string>(names: readonly K[], read: (name: K) => number | undefined) =>
        Object.fromEntries(names.flatMap((name) => {
            const value = read(name);
            return value === undefined ? [] : [[name, value]];
        })) as Partial<Record<K, number>>;
    return {
        cputune: present(CPUTUNE_NUMBERS, (name) => number(child(cputune, name))),
        vcpupins: Object.fromEntries(children(cputune, "vcpupin").flatMap((pin) => {
            const [vcpu, cpuset] = [attr(pin, "vcpu"), attr(pin, "cpuset")];
            return vcpu === undefined || cpuset === undefined ? [] : [[vcpu, cpuset]];
        })),
        emulatorpin: attr(child(cputune, "emulatorpin"), "cpuset"),
        vcpuCpuset: attr(child(domain, "vcpu"), "cpuset"),
        memtuneKiB: present(MEMTUNE_SIZES, (name) => (child(memtune, name) ? sizeKiB(child(memtune, name)) : undefined)),
        blkioWeight: number(child(child(domain, "blkiotune"), "weight")),
    };
}
