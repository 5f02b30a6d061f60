/**
 * The guest's own view, next to libvirt's. libvirt says what it plugged; only the guest says what
 * it uses: a stock distribution (Debian: no udev rule for it) keeps hot-added CPUs and plugged
 * virtio-mem memory offline. Read from the guest agent (`virsh guestvcpus`, the agent's memory
 * blocks) and from the balloon's statistics (`dommemstat` available: the guest's MemTotal).
 */
import type { StepOutcome } from "./virsh/step-script";
import type { DomainXml } from "./xml/domain-xml";

export interface GuestVcpus {
    /** vCPUs the guest sees (plugged). */
    present: number;
    /** vCPUs online in the guest. */
    online: number;
}

/** How many CPUs a Linux CPU list names: "0-2,5" is 4. */
export function cpuListCount(list: string): number {
    return list.split(",").map((part) => part.trim()).filter(Boolean).reduce((sum, part) => {
        const [from, to] = part.split("-").map(Number);
        return sum + (to === undefined ? 1 : to - from + 1);
    }, 0);
}

/** The answer of `virsh guestvcpus`; null when the agent did not answer (none configured, not running). */
export function guestVcpusOf(outcome: StepOutcome): GuestVcpus | null {
    if (!outcome.ran || outcome.exitCode !== 0) return null;
    const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(\\S*)`, "m").exec(outcome.stdout)?.[1];
    const [present, online] = [field("vcpus"), field("online")];
    return present === undefined || online === undefined ? null : { present: cpuListCount(present), online: cpuListCount(online) };
}

/** Why the agent did not answer, for messages: virsh's own words. */
export function agentSilence(outcome: StepOutcome): string {
    if (!outcome.ran) return "the agent was not asked";
    return (outcome.stderr.trim() || outcome.stdout.trim()).replace(/^error:\s*/gm, "").split("\n")[0] || `exit ${outcome.exitCode}`;
}

/**
 * The guest's total memory as it reports it through the balloon's statistics; null without them.
 * Without a statistics period the guest's driver reported once, at boot: that stale figure is not
 * the guest's view, so it counts only while the running domain has a period.
 */
export function guestMemoryKiB(outcome: StepOutcome, live: DomainXml | undefined): number | null {
    const match = outcome.ran && live?.balloonStatsPeriod ? /^available\s+(\d+)/m.exec(outcome.stdout) : null;
    return match ? Number(match[1]) : null;
}

export interface MemoryBlock {
    physIndex: number;
    online: boolean;
}

/** The agent's `guest-get-memory-blocks` answer; null when the agent did not answer. */
export function memoryBlocksOf(outcome: StepOutcome): MemoryBlock[] | null {
    if (!outcome.ran || outcome.exitCode !== 0) return null;
    try {
        const answer = JSON.parse(outcome.stdout) as { return?: Array<{ "phys-index"?: unknown; online?: unknown }> };
        return (answer.return ?? []).flatMap((b) =>
            typeof b["phys-index"] === "number" && typeof b.online === "boolean" ? [{ physIndex: b["phys-index"], online: b.online }] : []);
    } catch {
        return null;
    }
}

export const GET_MEMORY_BLOCKS = JSON.stringify({ execute: "guest-get-memory-blocks" });

/** The agent command that onlines these blocks (what a udev rule or memhp_default_state=online would have done). */
export function onlineMemoryBlocks(blocks: readonly MemoryBlock[]): string {
    return JSON.stringify({
        execute: "guest-set-memory-blocks",
        arguments: { "mem-blks": blocks.map((b) => ({ "phys-index": b.physIndex, online: true, "can-offline": true })) },
    });
}
