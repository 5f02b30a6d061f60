/**
 * Memory a virtio-mem device plugged is the guest's only once the guest onlines it. A guest with
 * no rule for it (Debian: no udev rule, no memhp_default_state=online) keeps the new blocks
 * offline: libvirt's <current> reaches <requested> and MemTotal does not move. With the guest
 * agent the provider onlines the blocks that appeared offline, as the rule would have; without
 * one it says so, with the fix, instead of claiming memory the guest does not use.
 */
import type { DomainSession } from "../batch/domain-batch";
import { pollUntil } from "../batch/poll";
import { VirshError } from "../errors";
import { warn } from "../engine-log";
import { guestMemoryKiB, MemoryBlock, memoryBlocksOf, onlineMemoryBlocks } from "../guest-view";
import { formatKiB } from "../units";
import { agentCommand, AGENT_TIMEOUT_SECONDS, Probe } from "../virsh/probes";
import { BALLOON } from "./device-lookup";

export const MEMORY_BLOCKS: Probe = { kind: "memoryBlocks" };

/** The guest refreshes its statistics every period (the rig's: 2 s); two periods and a little. */
const GUEST_TOTAL_WAIT_SECONDS = 5;
const POLL_INTERVAL_MS = 1000;

export interface MemoryChange {
    /** The agent's memory blocks at the read before the change; null: no agent answered. */
    blocksBefore: MemoryBlock[] | null;
    /** The guest's total before the change (balloon statistics); null without them. */
    totalBeforeKiB: number | null;
    /** How much the guest's total should move: the balloon's and the device's change together. */
    deltaKiB: number;
    /** What the device holds now, for messages. */
    pluggedKiB: number;
}

/**
 * After a live virtio-mem change has settled: online what appeared offline (agent), then wait
 * (bounded) for the guest's total to follow. Returns the guest's total as it last reported it.
 */
export async function guestTakesMemory(session: DomainSession, change: MemoryChange): Promise<number | null> {
    const { virsh } = session;
    if (change.blocksBefore && change.deltaKiB > 0) await onlineNewBlocks(session, change.blocksBefore);
    if (change.totalBeforeKiB === null) {
        await warn(`domain '${virsh.domain}': the guest reports no total memory (no balloon statistics), so whether it uses the ` +
            `${formatKiB(change.pluggedKiB)} its virtio-mem device holds is unknown; give its <memballoon> a statistics period ` +
            "(<stats period='2'/>, or virsh dommemstat --period 2 --live --config)");
        return null;
    }
    const expected = change.totalBeforeKiB + change.deltaKiB;
    const slack = 8 * 1024 + Math.abs(change.deltaKiB) * 0.03;
    const read = async () => {
        const round = await session.round({ probes: [BALLOON] });
        return guestMemoryKiB(round.probe(BALLOON), round.snapshot().live);
    };
    const { value: total, done } = await pollUntil(session, { seconds: GUEST_TOTAL_WAIT_SECONDS, intervalMs: POLL_INTERVAL_MS }, await read(), read,
        (kib) => kib !== null && Math.abs(kib - expected) <= slack);
    if (done) return total;
    const fix = change.blocksBefore || change.deltaKiB < 0
        ? "Look at the guest's memory blocks (lsmem) and its kernel log"
        : "The guest has not onlined the memory. Install qemu-guest-agent in the guest and give the domain its channel (the provider then onlines the memory), " +
          "or boot the guest with memhp_default_state=online, or add the udev rule " +
          "SUBSYSTEM==\"memory\", ACTION==\"add\", ATTR{state}==\"offline\", ATTR{state}=\"online\"";
    await warn(`domain '${virsh.domain}': the guest reports ${total === null ? "no" : formatKiB(total)} total memory, about ` +
        `${formatKiB(expected)} was expected with its virtio-mem device holding ${formatKiB(change.pluggedKiB)}. ${fix}`);
    return total;
}

/** Onlines, through the agent, the blocks that are offline now and were not before the change. */
async function onlineNewBlocks(session: DomainSession, before: readonly MemoryBlock[]): Promise<void> {
    const { virsh } = session;
    const wasOffline = new Set(before.filter((b) => !b.online).map((b) => b.physIndex));
    const now = memoryBlocksOf((await session.round({ probes: [MEMORY_BLOCKS] })).probe(MEMORY_BLOCKS));
    const fresh = (now ?? []).filter((b) => !b.online && !wasOffline.has(b.physIndex));
    if (fresh.length === 0) return;
    const request = { steps: [{ args: agentCommand(virsh, onlineMemoryBlocks(fresh)), timeoutSeconds: AGENT_TIMEOUT_SECONDS + 5 }], probes: [MEMORY_BLOCKS] };
    const round = await session.round(request);
    const failure = round.failure(request, { hint: "check the guest agent in the guest (systemctl status qemu-guest-agent); the memory stays plugged, and pulumi up again retries" });
    if (failure) throw failure;
    const after = memoryBlocksOf(round.probe(MEMORY_BLOCKS)) ?? [];
    const stillOffline = fresh.filter((b) => !after.some((a) => a.physIndex === b.physIndex && a.online));
    if (stillOffline.length > 0) {
        throw new VirshError(`the guest agent did not online ${stillOffline.length} of the ${fresh.length} memory blocks the virtio-mem device plugged ` +
            `(blocks ${stillOffline.map((b) => b.physIndex).join(", ")})`, virsh.context("memory"),
            "look at the guest's kernel log (dmesg) for why onlining failed; the memory stays plugged, and pulumi up again retries", 1);
    }
}
