/**
 * Attach/detach cycles on one guest through the AttachedDisk provider, over our own sshd on
 * 127.0.0.1:2223 (so every server-side connection and session counted is the provider's). Prints
 * ops/s, p50/p95 of attach, detach and whole cycle, provider RSS and heap at start and end (with
 * their ratios), and the server's connections/session processes before, at most during, and
 * after. The load suite (test/load/attach-detach-cycles.test.ts) runs the same function.
 *
 *   source /var/tmp/pll-rig/rig.env && node --expose-gc dist/bench/attach-detach-cycles.js [CYCLES] [DOMAIN]
 *
 * Defaults: 200 cycles on pll-fault4. The guest must be a Linux rig guest (it answers unplug).
 */
import type { AttachedDiskInputs, AttachedDiskOutputs } from "../provider/contract";
import type { FaultSshd } from "../test/faults/fault-env";
import type { RigEnv } from "../test/rig/rig-env";

export interface Percentiles { p50: number; p95: number; max: number }

export interface CycleReport {
    domain: string;
    cycles: number;
    seconds: number;
    /** Provider operations (one attach + one detach per cycle) per second. */
    opsPerSecond: number;
    attachMs: Percentiles;
    detachMs: Percentiles;
    cycleMs: Percentiles;
    rssMiB: { start: number; end: number; ratio: number };
    heapMiB: { start: number; end: number; ratio: number };
    /** Heap (after gc when exposed) every 20 cycles: a leak shows as a steady climb, warm-up as a step. */
    heapTrendMiB: number[];
    server: {
        before: ReturnType<FaultSshd["sessions"]>;
        maxDuring: ReturnType<FaultSshd["sessions"]>;
        after: ReturnType<FaultSshd["sessions"]>;
    };
}

function percentiles(values: number[]): Percentiles {
    const sorted = [...values].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    return { p50: at(0.5), p95: at(0.95), max: sorted[sorted.length - 1] };
}

const MIB = 1024 * 1024;

function memory(): { rss: number; heap: number } {
    // With --expose-gc, measure what is retained, not garbage waiting for collection.
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    return { rss: m.rss / MIB, heap: m.heapUsed / MIB };
}

/** Runs `cycles` create+delete of one disk on `domain`; throws on the first failure. */
export async function runCycles(env: RigEnv, sshd: FaultSshd, domain: string, cycles: number,
    progress: (done: number) => void = () => undefined): Promise<CycleReport> {
    const { providers } = await import("../provider/index");
    const { createImage, removeFiles, typed } = await import("../test/rig/rig-env");
    const disks = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    const connection = sshd.connection();
    const source = createImage(env, "cycles");
    const attachMs: number[] = [];
    const detachMs: number[] = [];
    const heapTrendMiB: number[] = [];
    const before = sshd.sessions();
    const maxDuring = { ...before };
    const sample = (): void => {
        const now = sshd.sessions();
        maxDuring.sshdChildren = Math.max(maxDuring.sshdChildren, now.sshdChildren);
        maxDuring.sessionProcesses = Math.max(maxDuring.sessionProcesses, now.sessionProcesses);
        maxDuring.established = Math.max(maxDuring.established, now.established);
    };
    try {
        // One warm-up cycle: the first connection, module loading and JIT are not what we measure.
        const warm = await disks.create({ connection, domain, source });
        await disks.delete(warm.id, warm.outs);
        const memStart = memory();
        const started = Date.now();
        for (let i = 0; i < cycles; i++) {
            const t0 = performance.now();
            const { id, outs } = await disks.create({ connection, domain, source });
            const t1 = performance.now();
            sample();
            await disks.delete(id, outs);
            const t2 = performance.now();
            attachMs.push(t1 - t0);
            detachMs.push(t2 - t1);
            if (i % 20 === 19) {
                sample();
                heapTrendMiB.push(memory().heap);
                progress(i + 1);
            }
        }
        const seconds = (Date.now() - started) / 1000;
        const memEnd = memory();
        return {
            domain,
            cycles,
            seconds,
            opsPerSecond: (2 * cycles) / seconds,
            attachMs: percentiles(attachMs),
            detachMs: percentiles(detachMs),
            cycleMs: percentiles(attachMs.map((a, i) => a + detachMs[i])),
            rssMiB: { start: memStart.rss, end: memEnd.rss, ratio: memEnd.rss / memStart.rss },
            heapMiB: { start: memStart.heap, end: memEnd.heap, ratio: memEnd.heap / memStart.heap },
            heapTrendMiB,
            server: { before, maxDuring, after: sshd.sessions() },
        };
    } finally {
        removeFiles([source]);
    }
}

export function formatReport(r: CycleReport): string {
    const ms = (p: Percentiles) => `p50 ${p.p50.toFixed(0)} ms, p95 ${p.p95.toFixed(0)} ms, max ${p.max.toFixed(0)} ms`;
    const s = (x: CycleReport["server"]["before"]) => `connections ${x.sshdChildren}, session processes ${x.sessionProcesses}, TCP established ${x.established}`;
    return [
        `attach/detach cycles on ${r.domain}: ${r.cycles} cycles in ${r.seconds.toFixed(1)} s = ${r.opsPerSecond.toFixed(2)} ops/s`,
        `  attach: ${ms(r.attachMs)}`,
        `  detach: ${ms(r.detachMs)}`,
        `  cycle:  ${ms(r.cycleMs)}`,
        `  RSS:  start ${r.rssMiB.start.toFixed(1)} MiB, end ${r.rssMiB.end.toFixed(1)} MiB, ratio ${r.rssMiB.ratio.toFixed(3)}`,
        `  heap: start ${r.heapMiB.start.toFixed(1)} MiB, end ${r.heapMiB.end.toFixed(1)} MiB, ratio ${r.heapMiB.ratio.toFixed(3)}`,
        `  heap every 20 cycles (MiB): ${r.heapTrendMiB.map((h) => h.toFixed(2)).join(" ")}`,
        `  server before: ${s(r.server.before)}`,
        `  server max during: ${s(r.server.maxDuring)}`,
        `  server after: ${s(r.server.after)}`,
    ].join("\n");
}

async function main(): Promise<void> {
    // rig-env.ts registers a mocha `after` hook when loaded; outside mocha there is none to register with.
    const globals = globalThis as { after?: (fn: () => void) => void };
    globals.after ??= () => undefined;
    const { loadRigEnv } = await import("../test/rig/rig-env");
    const { FaultSshd } = await import("../test/faults/fault-env");
    const { closeAllHosts } = await import("../provider/index");
    const cycles = Number(process.argv[2] ?? 200);
    const domain = process.argv[3] ?? "pll-fault4";
    const env = loadRigEnv();
    const sshd = new FaultSshd(env);
    sshd.start();
    try {
        const report = await runCycles(env, sshd, domain, cycles, (n) => process.stderr.write(`  ${n}/${cycles}\n`));
        console.log(formatReport(report));
        closeAllHosts();
        await new Promise((r) => setTimeout(r, 500));
        const closed = sshd.sessions();
        console.log(`  server after closeAllHosts: connections ${closed.sshdChildren}, session processes ${closed.sessionProcesses}, TCP established ${closed.established}`);
        console.log(JSON.stringify(report));
    } finally {
        closeAllHosts();
        sshd.stop();
    }
}

if (require.main === module) {
    main().catch((error: unknown) => {
        console.error(error);
        process.exit(1);
    });
}
