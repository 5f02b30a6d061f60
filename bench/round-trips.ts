/**
 * What a step costs, side by side, on the rig (counted on our own sshd on 127.0.0.1:2233, whose
 * ForceCommand logs every remote command and whose log holds every handshake):
 *   floor    the provider's virsh commands over one open SSH connection, one exec each
 *   script   the step's work (the changes and a verifying read) in one exec
 *   naive    one `ssh host virsh …` process per command, as a generic remote-command resource does
 *   provider providers.* called directly (operations of a step sent together, as the engine does)
 *   engine   `pulumi preview` / `up` / `refresh` / `destroy` through the real CLI (bench/engine-program.ts)
 * Workloads: 12 disks on one guest (attach, then detach); one disk attach + detach cycle; memory up
 * and down ×10; 3 guests × (4 disks + 1 NIC + DomainResources); a 256 MiB disk moved live beside
 * offline copies of it (bench/disk-move.ts: modes qemu-img and cp). Rounds alternate the modes;
 * medians with min–max; the ratios of the targets (issue: one round trip per step). Writes JSON.
 *
 *   bash bench/round-trips.sh [--rounds N] [--quick] [--move-only]      (prepares the rig and the CLI first)
 *   node dist/bench/round-trips.js [--rounds N] [--quick] [--move-only] [--json PATH]   (rig up, pulumi on PATH)
 */
import { spawn, spawnSync } from "child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { COPY_STEP, diskMoveWorkload, MOVE_STEP, MoveWorkload } from "./disk-move";
import type { BenchGuest, BenchProgram } from "./engine-program";
import type {
    AttachedDiskInputs, AttachedDiskOutputs, AttachedInterfaceInputs, AttachedInterfaceOutputs, ConnectionInputs, DomainResourcesInputs,
    DomainResourcesOutputs,
} from "../provider/contract";
import type { CountingSshd } from "../test/faults/counting-sshd";
import type { RigEnv } from "../test/rig/rig-env";

/** How a step ran; qemu-img and cp are the offline copies the disk move is set beside. */
export type Mode = "floor" | "script" | "naive" | "provider" | "engine" | "qemu-img" | "cp";

export interface Sample {
    workload: string;
    step: string;
    mode: Mode;
    ms: number;
    commands: number;
    handshakes: number;
}

export interface BenchOptions {
    rounds: number;
    /** Fewer disks and memory changes, one round: the test suite's smoke run. */
    quick: boolean;
    /** Only the disk-move workload (its own throwaway domain; none of the pll-fault guests). */
    moveOnly?: boolean;
}

export interface BenchReport {
    options: BenchOptions;
    versions: Record<string, string>;
    samples: Sample[];
    /** Peak RSS of the process running the provider, MiB, per mode of the 3-guest workload. */
    peakRssMiB: { provider: number; engine: number };
}

interface Bench {
    env: RigEnv;
    sshd: CountingSshd;
    connection: ConnectionInputs;
    options: BenchOptions;
    samples: Sample[];
    peakRss: { provider: number; engine: number };
    engineDir: string;
    engineEnv: NodeJS.ProcessEnv;
}

/** Our counting sshd's port: the test lanes' other counting sshds use 2224, 2230 and 2232. */
export const BENCH_PORT = 2233;
const W1_GUEST = "pll-fault4";
const MEMORY_GUEST = "pll-fault3";
const W2_GUESTS = ["pll-fault2", "pll-fault3", "pll-fault4"];
const POLL_MS = 500;
const BALLOON_POLL_MS = 1000;
const MIB = 1024 * 1024;

/** Runs `work`, recording its time and the server's counts as one sample. */
async function measure<T>(bench: Bench, workload: string, step: string, mode: Mode, work: () => Promise<T>): Promise<T> {
    const [commands, handshakes] = [bench.sshd.commands().length, bench.sshd.handshakes()];
    const started = performance.now();
    const result = await work();
    bench.samples.push({
        workload, step, mode, ms: performance.now() - started,
        commands: bench.sshd.commands().length - commands, handshakes: bench.sshd.handshakes() - handshakes,
    });
    return result;
}

// ------------------------------------------------------------------ floor, script, naive: plain commands

interface Line {
    line: string;
    stdin?: string;
}

async function virshFor(bench: Bench, domain: string) {
    const { virshFor: make } = await import("../provider/session");
    return make({ connection: bench.connection, domain });
}

/** One exec per command over the pooled connection; returns the last command's stdout. */
async function floor(bench: Bench, domain: string, lines: Line[]): Promise<string> {
    const virsh = await virshFor(bench, domain);
    let last = "";
    for (const { line, stdin } of lines) last = (await virsh.host.exec(line, stdin)).stdout;
    return last;
}

/** All lines in one exec (the provider's own step script); returns the last step's stdout. */
async function script(bench: Bench, domain: string, lines: Line[]): Promise<string> {
    const { buildStepScript } = await import("../provider/virsh/step-script");
    const { runScript } = await import("../provider/batch/batch-exec");
    const virsh = await virshFor(bench, domain);
    const built = buildStepScript(lines.map(({ line, stdin }) => [{ commandLine: line, stdin }]));
    const result = await runScript(virsh, built.text);
    const outcomes = built.parse(result.stdout, result.stderr);
    const last = outcomes[outcomes.length - 1][0];
    return last.ran ? last.stdout : "";
}

/** One `ssh` process (one handshake) per command. */
async function naive(bench: Bench, lines: Line[]): Promise<string> {
    const knownHosts = join(bench.engineDir, "known_hosts");
    writeFileSync(knownHosts, `[127.0.0.1]:${bench.sshd.port} ${bench.env.PLL_HOST_KEY}\n`);
    let last = "";
    for (const { line, stdin } of lines) {
        last = await new Promise<string>((resolve, reject) => {
            const child = spawn("ssh", ["-p", String(bench.sshd.port), "-i", bench.env.PLL_SSH_KEY, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", `UserKnownHostsFile=${knownHosts}`, `${bench.env.PLL_SSH_USER}@127.0.0.1`, line], { stdio: ["pipe", "pipe", "inherit"] });
            let out = "";
            child.stdout.on("data", (d: Buffer) => { out += d.toString(); });
            child.on("close", (code) => (code === null ? reject(new Error(`ssh ${line} was killed`)) : resolve(out)));
            child.stdin.end(stdin ?? "");
        });
    }
    return last;
}

async function plainMode(bench: Bench, mode: "floor" | "script" | "naive", domain: string, lines: Line[]): Promise<string> {
    if (mode === "floor") return floor(bench, domain, lines);
    if (mode === "script") return script(bench, domain, lines);
    return naive(bench, lines);
}

/** The quoted virsh command lines of a domain. */
async function lines(bench: Bench, domain: string, commands: Array<{ args: string[]; stdin?: string; host?: boolean }>): Promise<Line[]> {
    const virsh = await virshFor(bench, domain);
    return commands.map((c) => ({ line: virsh.commandLine(c), stdin: c.stdin }));
}

const read = (domain: string) => [{ args: ["domstate", `--domain=${domain}`] }, { args: ["dumpxml", `--domain=${domain}`] }, { args: ["dumpxml", "--inactive", `--domain=${domain}`] }];

function diskXml(source: string, target: string): string {
    return `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${source}'/><target dev='${target}' bus='virtio'/></disk>`;
}

function diskTargets(count: number): string[] {
    return Array.from({ length: count }, (_, i) => `vd${String.fromCharCode("b".charCodeAt(0) + i)}`);
}

/** Until `check` says so (polled with `wait`, bounded by 60 s): the wait on the guest every mode shares. */
async function until(check: () => Promise<boolean>, wait: number): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (!(await check())) {
        if (Date.now() > deadline) throw new Error("the guest did not follow within 60 s");
        await new Promise((r) => setTimeout(r, wait));
    }
}

/** Attach then detach `sources` on `domain` the plain way; the provider's commands for floor and naive, the bare work for script. */
async function plainDisks(bench: Bench, mode: "floor" | "script" | "naive", workload: string, domain: string, sources: string[]): Promise<void> {
    const names = diskTargets(sources.length);
    const attach = sources.map((s, i) => ({ args: ["attach-device", `--domain=${domain}`, "--file=/dev/stdin", "--live", "--config"], stdin: diskXml(s, names[i]) }));
    const attachLines = mode === "script"
        ? [...attach, ...read(domain)]
        : [...read(domain), ...sources.map((s) => ({ host: true, args: ["stat", "-L", "-c", "%F", "--", s] })), ...attach, ...read(domain)];
    const gone = async (): Promise<boolean> => {
        const xml = await plainMode(bench, mode, domain, await lines(bench, domain, [{ args: ["dumpxml", `--domain=${domain}`] }]));
        return names.every((t) => !xml.includes(`dev='${t}'`));
    };
    await measure(bench, workload, "attach", mode, async () => plainMode(bench, mode, domain, await lines(bench, domain, attachLines)));
    await measure(bench, workload, "detach", mode, async () => {
        const detach = mode === "script"
            ? names.map((t) => ({ args: ["detach-disk", `--domain=${domain}`, `--target=${t}`, "--live", "--config"] }))
            : [...read(domain), ...names.flatMap((t) => ["--config", "--live"].map((flag) => ({ args: ["detach-disk", `--domain=${domain}`, `--target=${t}`, flag] })))];
        await plainMode(bench, mode, domain, await lines(bench, domain, [...detach, ...read(domain)]));
        await until(gone, POLL_MS);
    });
}

/** One memory change the plain way: the provider's commands (floor, naive) or setmem alone (script), then the balloon. */
async function plainMemory(bench: Bench, mode: "floor" | "script" | "naive", domain: string, mib: number): Promise<void> {
    const d = `--domain=${domain}`;
    const size = `--size=${mib * 1024}KiB`;
    const change = mode === "script"
        ? [{ args: ["setmem", d, size, "--live", "--config"] }, ...read(domain), { args: ["dommemstat", d] }]
        : [...read(domain), { args: ["dommemstat", d] }, { args: ["nodeinfo"] }, { args: ["setmem", d, size, "--config"] }, { args: ["setmem", d, size, "--live"] },
            ...read(domain), { args: ["dommemstat", d] }];
    const settled = (stats: string) => Math.abs(Number(/^actual\s+(\d+)/m.exec(stats)?.[1]) - mib * 1024) <= 1024;
    let last = await plainMode(bench, mode, domain, await lines(bench, domain, change));
    while (!settled(last)) {
        await new Promise((r) => setTimeout(r, BALLOON_POLL_MS));
        last = await plainMode(bench, mode, domain, await lines(bench, domain, [{ args: ["dommemstat", d] }]));
    }
}

// ------------------------------------------------------------------ provider

async function providerDisks(bench: Bench, workload: string, guests: BenchGuest[]): Promise<void> {
    const { providers } = await import("../provider/index");
    const { typed } = await import("../test/rig/rig-env");
    const disks = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    const nics = typed<AttachedInterfaceInputs, AttachedInterfaceOutputs>(providers.attachedInterface);
    const sizes = typed<DomainResourcesInputs, DomainResourcesOutputs>(providers.domainResources);
    const { connection } = bench;
    const sample = setInterval(() => { bench.peakRss.provider = Math.max(bench.peakRss.provider, process.memoryUsage().rss / MIB); }, 100);
    try {
        // Every operation of the step at once, as the engine sends independent resources.
        const created = await measure(bench, workload, "attach", "provider", () => Promise.all(guests.map(async (g) => {
            const [d, n, s] = await Promise.all([
                Promise.all(g.disks.map((source) => disks.create({ connection, domain: g.domain, source }))),
                Promise.all(Array.from({ length: g.nics }, () => nics.create({ connection, domain: g.domain, type: "bridge", source: g.bridge }))),
                Promise.all(g.vcpus === undefined ? [] : [sizes.create({ connection, domain: g.domain, vcpus: g.vcpus })]),
            ]);
            return { disks: d, nics: n, sizes: s };
        })));
        await measure(bench, workload, "refresh", "provider", () => Promise.all(created.flatMap((c) => [
            ...c.disks.map((d) => disks.read(d.id, d.outs)), ...c.nics.map((n) => nics.read(n.id, n.outs)), ...c.sizes.map((s) => sizes.read(s.id, s.outs)),
        ])));
        await measure(bench, workload, "detach", "provider", () => Promise.all(created.flatMap((c) => [
            ...c.disks.map((d) => disks.delete(d.id, d.outs)), ...c.nics.map((n) => nics.delete(n.id, n.outs)), ...c.sizes.map((s) => sizes.delete(s.id, s.outs)),
        ])));
    } finally {
        clearInterval(sample);
    }
}

async function providerMemory(bench: Bench, domain: string, changes: number[]): Promise<void> {
    const { providers } = await import("../provider/index");
    const { typed } = await import("../test/rig/rig-env");
    const sizes = typed<DomainResourcesInputs, DomainResourcesOutputs>(providers.domainResources);
    const { connection } = bench;
    let state = await sizes.create({ connection, domain, memory: "256MiB" });
    for (const mib of changes) {
        const outs = await measure(bench, "memory", "change", "provider", () => sizes.update(state.id, state.outs, { connection, domain, memory: `${mib}MiB` }));
        if (!outs.balloonSettled) throw new Error(`the balloon of ${domain} did not settle at ${mib} MiB`);
        state = { id: state.id, outs };
    }
}

// ------------------------------------------------------------------ engine

/** The largest peak RSS (VmHWM) among the engine's dynamic-provider processes now running, MiB. */
function providerProcessPeakMiB(): number {
    let peak = 0;
    for (const pid of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
        try {
            const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
            // `node …/cmd/dynamic-provider/index.js`, not the plugin script's `node -e "require.resolve(…)"` before it.
            if (!argv.some((a) => /dynamic-provider(\/index\.js)?$/.test(a)) || argv.includes("-e")) continue;
            peak = Math.max(peak, Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024);
        } catch {
            // The process ended while we looked.
        }
    }
    return peak;
}

async function pulumi(bench: Bench, stack: string, args: string[], program: BenchProgram): Promise<void> {
    const env = { ...bench.engineEnv, PLL_BENCH_PROGRAM: JSON.stringify(program) };
    const sample = setInterval(() => { bench.peakRss.engine = Math.max(bench.peakRss.engine, providerProcessPeakMiB()); }, 100);
    try {
        await new Promise<void>((resolve, reject) => {
            const child = spawn("pulumi", [...args, "--stack", stack, "--non-interactive"], { cwd: bench.engineDir, env, stdio: ["ignore", "pipe", "pipe"] });
            let log = "";
            child.stdout.on("data", (d: Buffer) => { log += d.toString(); });
            child.stderr.on("data", (d: Buffer) => { log += d.toString(); });
            child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`pulumi ${args.join(" ")} exited ${code}:\n${log.slice(-3000)}`))));
        });
    } finally {
        clearInterval(sample);
    }
}

async function engineRun(bench: Bench, workload: string, guests: BenchGuest[]): Promise<void> {
    const stack = workload.replace(/[^A-Za-z0-9-]/g, "-");
    spawnSync("pulumi", ["stack", "init", stack, "--non-interactive"], { cwd: bench.engineDir, env: bench.engineEnv, encoding: "utf8" });
    const { PLL_SSH_KEY: keyPath } = bench.env;
    const { privateKey: _key, ...connection } = bench.connection;
    const program: BenchProgram = { connection, keyPath, guests };
    await measure(bench, workload, "preview", "engine", () => pulumi(bench, stack, ["preview"], program));
    await measure(bench, workload, "attach", "engine", () => pulumi(bench, stack, ["up", "--yes", "--skip-preview"], program));
    await measure(bench, workload, "refresh", "engine", () => pulumi(bench, stack, ["refresh", "--yes", "--skip-preview"], program));
    await measure(bench, workload, "detach", "engine", () => pulumi(bench, stack, ["destroy", "--yes", "--skip-preview"], program));
}

// ------------------------------------------------------------------ the run

function rotate<T>(items: T[], by: number): T[] {
    return items.map((_, i) => items[(i + by) % items.length]);
}

export async function runBenchmark(env: RigEnv, sshd: CountingSshd, options: BenchOptions): Promise<BenchReport> {
    const { createImage, removeFiles, resetGuest } = await import("../test/rig/rig-env");
    const { closeAllHosts } = await import("../provider/index");
    // The compiled program's own folder is the project: it finds @pulumi/pulumi and this package (the
    // self-link scripts/prepare.sh makes) in the repository's node_modules, as the quickstart does.
    const engineDir = __dirname;
    writeFileSync(join(engineDir, "Pulumi.yaml"), "name: pll-bench\nruntime: nodejs\nmain: engine-program.js\n");
    const home = mkdtempSync(join(tmpdir(), "pll-bench-"));
    mkdirSync(join(home, "backend"));
    const engineEnv = {
        ...process.env, PULUMI_BACKEND_URL: `file://${join(home, "backend")}`, PULUMI_CONFIG_PASSPHRASE: "pll-bench",
        PULUMI_SKIP_UPDATE_CHECK: "true", PULUMI_HOME: join(home, "pulumi-home"),
    };
    const bench: Bench = {
        env, sshd, options, samples: [], peakRss: { provider: 0, engine: 0 }, engineDir, engineEnv,
        // Settings no test uses: a pooled connection of the benchmark's own.
        connection: sshd.connection({ connectTimeout: 12 }),
    };
    const diskCount = options.quick ? 4 : 12;
    const moveMib = options.quick ? 32 : 256;
    let move: MoveWorkload | undefined;
    const images: string[] = [];
    const image = (label: string) => {
        const path = createImage(env, `bench-${label}`);
        images.push(path);
        return path;
    };
    try {
        move = await diskMoveWorkload(env, bench.connection, moveMib, (step, mode, work) => measure(bench, moveWorkloadName(moveMib), step, mode, work));
        if (options.moveOnly) {
            for (let round = 0; round < options.rounds; round++) await move.round();
            return { options, versions: versions(), samples: bench.samples, peakRssMiB: bench.peakRss };
        }
        for (const guest of new Set([W1_GUEST, MEMORY_GUEST, ...W2_GUESTS])) resetGuest(guest);
        const w1: BenchGuest = { domain: W1_GUEST, disks: Array.from({ length: diskCount }, (_, i) => image(`w1-${i}`)), nics: 0, bridge: env.PLL_BRIDGE, vcpus: 1 };
        const cycle: BenchGuest = { ...w1, disks: [w1.disks[0]], vcpus: undefined };
        const w2: BenchGuest[] = W2_GUESTS.map((domain) => ({
            domain, disks: Array.from({ length: options.quick ? 2 : 4 }, (_, i) => image(`w2-${domain}-${i}`)), nics: 1, bridge: env.PLL_BRIDGE, vcpus: 1,
        }));
        const memory = Array.from({ length: options.quick ? 2 : 10 }, (_, i) => (i % 2 === 0 ? 320 : 256));
        const w1Name = `${diskCount} disks on one guest`;
        const w2Name = `3 guests x (${w2[0].disks.length} disks + 1 NIC + DomainResources)`;
        // A warm-up: the pooled connection, module loading and the CLI's first start are not what we measure.
        await floor(bench, W1_GUEST, await lines(bench, W1_GUEST, read(W1_GUEST)));
        for (let round = 0; round < options.rounds; round++) {
            for (const mode of rotate<Exclude<Mode, "qemu-img" | "cp">>(["floor", "script", "naive", "provider", "engine"], round)) {
                if (mode === "provider") {
                    await providerDisks(bench, w1Name, [w1]);
                    await providerDisks(bench, "disk cycle", [cycle]);
                    await providerMemory(bench, MEMORY_GUEST, memory);
                    await providerDisks(bench, w2Name, w2);
                    await move.round();
                } else if (mode === "engine") {
                    await engineRun(bench, w1Name, [w1]);
                    await engineRun(bench, w2Name, w2);
                } else {
                    await plainDisks(bench, mode, w1Name, W1_GUEST, w1.disks);
                    await plainDisks(bench, mode, "disk cycle", W1_GUEST, cycle.disks);
                    for (const mib of memory) await measure(bench, "memory", "change", mode, () => plainMemory(bench, mode, MEMORY_GUEST, mib));
                }
            }
        }
    } finally {
        move?.close();
        closeAllHosts();
        removeFiles(images);
        rmSync(home, { recursive: true, force: true });
    }
    return { options, versions: versions(), samples: bench.samples, peakRssMiB: bench.peakRss };
}

export function moveWorkloadName(mib: number): string {
    return `disk move (${mib} MiB of data)`;
}

function versions(): Record<string, string> {
    const first = (cmd: string, args: string[]) => (spawnSync(cmd, args, { encoding: "utf8" }).stdout ?? "").split("\n")[0].trim();
    return {
        node: process.version,
        pulumi: first("pulumi", ["version"]),
        libvirt: first("virsh", ["--version"]),
        qemu: first("qemu-system-x86_64", ["--version"]),
        openssh: (spawnSync("ssh", ["-V"], { encoding: "utf8" }).stderr ?? "").trim(),
        kernel: first("uname", ["-r"]),
    };
}

// ------------------------------------------------------------------ the report

export interface Row {
    workload: string;
    step: string;
    mode: Mode;
    medianMs: number;
    minMs: number;
    maxMs: number;
    commands: number;
    handshakes: number;
    runs: number;
}

function median(values: number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function summarize(samples: Sample[]): Row[] {
    const groups = new Map<string, Sample[]>();
    for (const s of samples) {
        const key = JSON.stringify([s.workload, s.step, s.mode]);
        groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    return [...groups.values()].map((g) => ({
        workload: g[0].workload, step: g[0].step, mode: g[0].mode,
        medianMs: median(g.map((s) => s.ms)), minMs: Math.min(...g.map((s) => s.ms)), maxMs: Math.max(...g.map((s) => s.ms)),
        commands: median(g.map((s) => s.commands)), handshakes: median(g.map((s) => s.handshakes)), runs: g.length,
    }));
}

export interface Target {
    name: string;
    value: number;
    /** Absent for a ratio that is measured, not held to a limit (the disk move beside offline copies). */
    limit?: number;
    holds?: boolean;
    detail: string;
}

export function targets(rows: Row[], peakRss: BenchReport["peakRssMiB"], w1: string, w2: string): Target[] {
    const at = (workload: string, step: string, mode: Mode) => rows.find((r) => r.workload === workload && r.step === step && r.mode === mode);
    const list: Target[] = [];
    const add = (name: string, value: number | undefined, limit: number, detail: string) => {
        if (value !== undefined && Number.isFinite(value)) list.push({ name, value, limit, holds: value <= limit, detail });
    };
    const ms = (r?: Row) => r?.medianMs;
    const preview = ms(at(w1, "preview", "engine"));
    const script = ms(at(w1, "attach", "script"));
    const scriptDetach = ms(at(w1, "detach", "script"));
    const up = ms(at(w1, "attach", "engine"));
    const destroy = ms(at(w1, "detach", "engine"));
    if (preview !== undefined && script && up !== undefined) add("engine up − preview, ÷ script (12 disks)", (up - preview) / script, 4, `(${f(up)} − ${f(preview)}) ÷ ${f(script)}`);
    add("engine up: remote commands (12 disks)", at(w1, "attach", "engine")?.commands, 8, "server-side count");
    if (preview !== undefined && scriptDetach && destroy !== undefined) add("engine destroy − preview, ÷ script (12 disks)", (destroy - preview) / scriptDetach, 1.5, `(${f(destroy)} − ${f(preview)}) ÷ ${f(scriptDetach)}`);
    add("engine refresh: remote commands per guest (12 disks, 1 guest)", at(w1, "refresh", "engine")?.commands, 1, "server-side count");
    add("engine refresh: remote commands per guest (3 guests)", (at(w2, "refresh", "engine")?.commands ?? NaN) / 3, 1, "server-side count ÷ 3");
    add("provider refresh: remote commands per guest (3 guests)", (at(w2, "refresh", "provider")?.commands ?? NaN) / 3, 1, "server-side count ÷ 3");
    const cycle = (mode: Mode) => (ms(at("disk cycle", "attach", mode)) ?? NaN) + (ms(at("disk cycle", "detach", mode)) ?? NaN);
    add("provider ÷ floor, disk attach + verify + detach", cycle("provider") / cycle("floor"), 0.8, `${f(cycle("provider"))} ÷ ${f(cycle("floor"))}`);
    const memory = (mode: Mode) => ms(at("memory", "change", mode)) ?? NaN;
    add("provider ÷ floor, verified memory change", memory("provider") / memory("floor"), 0.7, `${f(memory("provider"))} ÷ ${f(memory("floor"))}`);
    for (const workload of [w1, w2]) {
        const hosts = 1;
        for (const step of ["preview", "attach", "refresh", "detach"]) add(`engine ${step} (${workload}): handshakes per host`, (at(workload, step, "engine")?.handshakes ?? NaN) / hosts, 1, "server-side count");
        add(`engine preview without refresh (${workload}): remote commands`, at(workload, "preview", "engine")?.commands, 0, "server-side count");
    }
    const move = rows.find((r) => r.step === MOVE_STEP && r.mode === "provider");
    for (const mode of ["qemu-img", "cp"] as const) {
        const copy = move && at(move.workload, COPY_STEP, mode);
        if (move && copy) list.push({ name: `${move.workload}: live move ÷ offline ${mode === "cp" ? "cp --sparse=always" : "qemu-img convert"}`, value: move.medianMs / copy.medianMs, detail: `${f(move.medianMs)} ÷ ${f(copy.medianMs)}` });
    }
    add("provider peak RSS, 3-guest workload (MiB)", peakRss.provider || undefined, 150, "this process, sampled every 100 ms");
    add("engine's provider process peak RSS, both workloads (MiB)", peakRss.engine || undefined, 150, "VmHWM of the dynamic-provider process, sampled every 100 ms");
    return list;
}

function f(ms: number | undefined): string {
    return ms === undefined ? "—" : `${(ms / 1000).toFixed(2)} s`;
}

export function formatReport(report: BenchReport, rows: Row[], list: Target[]): string {
    const table = [
        "| workload | step | mode | median s (min–max) | remote commands | SSH handshakes | runs |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        ...rows.map((r) => `| ${r.workload} | ${r.step} | ${r.mode} | ${(r.medianMs / 1000).toFixed(2)} (${(r.minMs / 1000).toFixed(2)}–${(r.maxMs / 1000).toFixed(2)}) | ${r.commands} | ${r.handshakes} | ${r.runs} |`),
    ];
    const ratios = [
        "| target | value | limit | holds | from |",
        "| --- | --- | --- | --- | --- |",
        ...list.map((t) => `| ${t.name} | ${Number.isInteger(t.value) ? t.value : t.value.toFixed(2)} | ${t.limit === undefined ? "—" : `≤ ${t.limit}`} | ${t.holds === undefined ? "—" : t.holds ? "yes" : "**no**"} | ${t.detail} |`),
    ];
    const versions = Object.entries(report.versions).map(([k, v]) => `${k} ${v}`).join("; ");
    return [`rounds: ${report.options.rounds}${report.options.quick ? " (quick)" : ""}; ${versions}`, "", ...table, "", ...ratios].join("\n");
}

async function main(): Promise<void> {
    // rig-env.ts registers a mocha `after` hook when loaded; outside mocha there is none to register with.
    const globals = globalThis as { after?: (fn: () => void) => void };
    globals.after ??= () => undefined;
    const argv = process.argv.slice(2);
    const option = (name: string) => {
        const i = argv.indexOf(name);
        return i >= 0 ? argv[i + 1] : undefined;
    };
    const quick = argv.includes("--quick");
    const options: BenchOptions = { rounds: Number(option("--rounds") ?? (quick ? 1 : 3)), quick, moveOnly: argv.includes("--move-only") };
    const jsonPath = option("--json") ?? join(__dirname, "round-trips.json");
    const { loadRigEnv } = await import("../test/rig/rig-env");
    const { CountingSshd } = await import("../test/faults/counting-sshd");
    const env = loadRigEnv();
    const sshd = new CountingSshd(env, BENCH_PORT);
    sshd.start();
    try {
        const report = await runBenchmark(env, sshd, options);
        const rows = summarize(report.samples);
        const w1 = rows.find((r) => r.workload.endsWith("disks on one guest"))?.workload ?? "";
        const w2 = rows.find((r) => r.workload.startsWith("3 guests"))?.workload ?? "";
        const list = targets(rows, report.peakRssMiB, w1, w2);
        console.log(formatReport(report, rows, list));
        writeFileSync(jsonPath, `${JSON.stringify({ ...report, rows, targets: list }, null, 2)}\n`);
        console.log(`\nJSON: ${jsonPath}`);
    } finally {
        sshd.stop();
    }
}

if (require.main === module) {
    main().catch((error: unknown) => {
        console.error(error);
        process.exit(1);
    });
}
