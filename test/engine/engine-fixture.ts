/**
 * The shared fixture of the engine suites: the package installed as a user gets it (`npm pack`,
 * the tarball installed into a scratch program with its own node_modules), and stacks on a
 * throwaway local backend, driven through that program's own Automation API and the real CLI.
 *
 * Everything a program uses (the SDK, `@pulumi/pulumi`, the Automation API) is required from the
 * consumer's node_modules, so the engine serializes the provider closure exactly as it would for
 * a user. The CLI must be on PATH (the test command puts it there); when it is not, the fixture
 * builds or finds it with tools/pulumi-cli/build.sh.
 *
 * Env: PLL_KEEP_ENGINE_TMP=1 keeps consumer and stack folders for a post-mortem;
 * PLL_ENGINE_EVENTS_DIR=<dir> writes each run's engine events there as JSON.
 */
import { execFile, execFileSync, spawnSync } from "child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { createRequire } from "module";
import { tmpdir } from "os";
import { delimiter, join } from "path";
import { promisify } from "util";
import type * as PulumiModule from "@pulumi/pulumi";
import type * as AutomationModule from "@pulumi/pulumi/automation";
import type * as SdkModule from "../../sdk";
import type { ConnectionInputs } from "../../provider/contract";
import type { Inputs } from "../../sdk/inputs";
import { REPO_ROOT, RigEnv, rigConnection } from "../rig/rig-env";

type Automation = typeof AutomationModule;
type EngineEvent = AutomationModule.EngineEvent;
type UpdateSummary = AutomationModule.UpdateSummary;
type OpType = AutomationModule.OpType;

const KEEP_TMP = process.env.PLL_KEEP_ENGINE_TMP === "1";
const EVENTS_DIR = process.env.PLL_ENGINE_EVENTS_DIR;
let runCounter = 0;
const PASSPHRASE = "pll-engine-tests";
const scratch: string[] = [];

export function scratchDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    scratch.push(dir);
    return dir;
}

after(function () {
    if (timings.length) console.log(timingReport());
    if (!KEEP_TMP) for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
});

// ------------------------------------------------------------------ the CLI

let cliChecked = false;

/** Puts the pulumi CLI (and its nodejs plugins beside it) on PATH, building it when missing. */
export function ensureCli(): void {
    if (cliChecked) return;
    if (spawnSync("pulumi", ["version"], { encoding: "utf8" }).status !== 0) {
        const out = execFileSync("bash", [join(REPO_ROOT, "tools", "pulumi-cli", "build.sh")],
            { cwd: REPO_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 30 * 60 * 1000 });
        const bin = out.trim().split("\n").pop() ?? "";
        if (!existsSync(join(bin, "pulumi"))) throw new Error(`tools/pulumi-cli/build.sh printed '${bin}', which holds no pulumi binary`);
        process.env.PATH = `${bin}${delimiter}${process.env.PATH ?? ""}`;
    }
    cliChecked = true;
}

// ------------------------------------------------------------------ the consumer program

export interface Consumer {
    /** The scratch program's folder (node_modules holds the installed tarball). */
    dir: string;
    /** The version of pulumi-libvirt-live installed there. */
    version: string;
    /** The tarball that was installed. */
    tarball: string;
    /** The SDK as the consumer requires it (`require("pulumi-libvirt-live")`). */
    load(): typeof SdkModule;
    /** The consumer's own `@pulumi/pulumi`: programs must use this one (pulumi.secret, Config…). */
    pulumi: typeof PulumiModule;
    /** The consumer's own Automation API: it serves the inline program's language runtime. */
    automation: Automation;
}

function repoPackageJson(): { name: string; version: string; dependencies: Record<string, string> } {
    return JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { name: string; version: string; dependencies: Record<string, string> };
}

const execFileAsync = promisify(execFile);

/** Runs a command without blocking the event loop (guest resets run meanwhile); fails with its stderr. */
export async function run(command: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<string> {
    try {
        return (await execFileAsync(command, args, { cwd, env: { ...process.env, ...env }, encoding: "utf8", maxBuffer: 64 * 1024 * 1024, timeout: 10 * 60 * 1000 })).stdout;
    } catch (error) {
        const stderr = (error as { stderr?: string }).stderr ?? "";
        throw new Error(`${command} ${args.join(" ")} in ${cwd} failed: ${(error as Error).message}\n${stderr.slice(-2000)}`);
    }
}

/** `npm pack` of what is built: its `prepare` (the build, for installs from git) is not run again. */
async function npmPack(cwd: string, dest: string): Promise<string> {
    const [info] = JSON.parse(await run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dest], cwd)) as Array<{ filename: string }>;
    return join(dest, info.filename);
}

let packed: Promise<string> | undefined;

/** `npm pack` of the repo as built (the test command runs tsc first), once per process. */
function packRepo(): Promise<string> {
    if (!existsSync(join(REPO_ROOT, "dist", "sdk", "index.js"))) {
        throw new Error(`${join(REPO_ROOT, "dist/sdk/index.js")} is missing: run 'npx tsc -p tsconfig.json' before the engine suite`);
    }
    if (!packed) {
        packed = npmPack(REPO_ROOT, scratchDir("pll-pack-"));
        packed.catch(() => { packed = undefined; });
    }
    return packed;
}

/**
 * A second build of the package: the packed one with another version and a harmless change, a
 * comment inside the function the engine serializes, so the upgraded `__provider` text differs.
 */
async function repack(tarball: string, version: string, tag: string): Promise<string> {
    const work = scratchDir("pll-repack-");
    await run("tar", ["xzf", tarball, "-C", work], work);
    const root = join(work, "package");
    const manifestPath = join(root, "package.json");
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { version: string };
    manifest.version = version;
    writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
    const lazyPath = join(root, "dist", "sdk", "lazy-provider.js");
    const lazy = readFileSync(lazyPath, "utf8");
    const marker = 'require("pulumi-libvirt-live/provider")';
    writeFileSync(lazyPath, lazy.includes(marker) ? lazy.replace(marker, `/* ${tag} */ ${marker}`) : `${lazy}\n// ${tag}\n`);
    return npmPack(root, work);
}

const consumers = new Map<string, Promise<Consumer>>();

/**
 * A scratch program with the packed package and `@pulumi/pulumi` (the repo's version) installed
 * from the local npm cache. Without options: the repo as built. With `version` (and `tag`, the
 * harmless change's marker): a second build for upgrade tests. Cached per version in the process.
 */
export function installConsumer(opts: { version?: string; tag?: string } = {}): Promise<Consumer> {
    const repo = repoPackageJson();
    const version = opts.version ?? repo.version;
    const key = `${version}#${opts.tag ?? ""}`;
    let consumer = consumers.get(key);
    if (!consumer) {
        consumer = install(version, opts.tag);
        consumers.set(key, consumer);
        consumer.catch(() => consumers.delete(key));
    }
    return consumer;
}

async function install(version: string, tag: string | undefined): Promise<Consumer> {
    ensureCli();
    const repo = repoPackageJson();
    const base = await packRepo();
    const tarball = version === repo.version && tag === undefined ? base : await repack(base, version, tag ?? `upgrade to ${version}`);
    const dir = scratchDir(`pll-consumer-${version}-`);
    writeFileSync(join(dir, "package.json"), `${JSON.stringify({
        name: "pll-engine-consumer", version: "1.0.0", private: true,
        dependencies: { [repo.name]: `file:${tarball}`, "@pulumi/pulumi": repo.dependencies["@pulumi/pulumi"] },
    }, null, 2)}\n`);
    await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund"], dir);
    const requireHere = createRequire(join(dir, "package.json"));
    const installed = JSON.parse(readFileSync(join(dir, "node_modules", repo.name, "package.json"), "utf8")) as { version: string };
    if (installed.version !== version) throw new Error(`${dir} holds ${repo.name}@${installed.version}, expected ${version}`);
    return {
        dir,
        version,
        tarball,
        load: () => requireHere(repo.name) as typeof SdkModule,
        pulumi: requireHere("@pulumi/pulumi") as typeof PulumiModule,
        automation: requireHere("@pulumi/pulumi/automation") as Automation,
    };
}

/** The rig connection for a program: the private key as `pulumi.secret`, as users are told to pass it. */
export function rigStackConnection(consumer: Consumer, env: RigEnv, overrides: Partial<ConnectionInputs> = {}): Inputs<ConnectionInputs> {
    const { privateKey, ...rest } = rigConnection(env, overrides);
    return { ...rest, privateKey: consumer.pulumi.secret(privateKey ?? "") };
}

// ------------------------------------------------------------------ stacks

export type RunKind = "up" | "preview" | "refresh" | "destroy";

export interface RunResult {
    kind: RunKind;
    /** preview: the changeSummary; other runs: summary.resourceChanges. */
    changes: Partial<Record<OpType, number>>;
    summary?: UpdateSummary;
    /**
     * Per resource name: its operation (replace steps collapsed to "replace"; for a refresh, its
     * outcome: same, update or delete). The stack and the default provider are included.
     */
    ops: Record<string, string>;
    /** Per resource name: every step op the engine announced, in order. */
    steps: Record<string, string[]>;
    /**
     * Per resource name: the changed input keys, sorted. The engine's `diffs` where it sends them;
     * a dynamic provider's diff carries none, so otherwise the top-level inputs of the step's old
     * and new state are compared (as the CLI does for its "[diff: ~key]"), `__provider` aside.
     */
    diffs: Record<string, string[]>;
    /** Per resource name: the keys forcing a replacement (`keys`), where given. */
    replaceKeys: Record<string, string[]>;
    /** Per resource name: the resource type token. */
    types: Record<string, string>;
    /** Resources whose operation failed. */
    failed: string[];
    /** Stack outputs (up only), values as the Automation API gives them. */
    outputs: Record<string, { value: unknown; secret: boolean }>;
    /** The engine's progress output and stderr, as a user sees it. */
    log: string;
    events: EngineEvent[];
    ms: number;
}

/** Our resources with an operation other than "same" (the stack and the default provider aside). */
export function changed(run: RunResult): Record<string, string> {
    return Object.fromEntries(Object.entries(run.ops).filter(([name, op]) => op !== "same" && !run.types[name]?.startsWith("pulumi:")));
}

/** A failed engine run: the message ends with the engine's log; `run` holds what the events said. */
export class EngineRunError extends Error {
    constructor(message: string, readonly run: RunResult) {
        super(message);
        this.name = "EngineRunError";
    }
}

const REPLACE_STEPS = new Set(["replace", "create-replacement", "delete-replaced"]);

function nameOf(urn: string): string {
    return urn.split("::").pop() ?? urn;
}

function changedInputs(meta: AutomationModule.StepEventMetadata): string[] {
    if (meta.diffs?.length) return meta.diffs;
    const olds = meta.old?.inputs ?? {};
    const news = meta.new?.inputs ?? {};
    if (!meta.old || !meta.new) return [];
    return [...new Set([...Object.keys(olds), ...Object.keys(news)])]
        .filter((key) => key !== "__provider" && JSON.stringify(olds[key]) !== JSON.stringify(news[key]));
}

function collect(kind: RunKind): { run: RunResult; onOutput: (s: string) => void; onError: (s: string) => void; onEvent: (e: EngineEvent) => void } {
    const run: RunResult = { kind, changes: {}, ops: {}, steps: {}, diffs: {}, replaceKeys: {}, types: {}, failed: [], outputs: {}, log: "", events: [], ms: 0 };
    const note = (meta: AutomationModule.StepEventMetadata): void => {
        const name = nameOf(meta.urn);
        run.types[name] = meta.type;
        (run.steps[name] ??= []).push(meta.op);
        const steps = run.steps[name];
        // A refresh announces "refresh" and reports its outcome (same/update/delete) when done.
        run.ops[name] = steps.some((op) => REPLACE_STEPS.has(op)) ? "replace" : steps[0] === "refresh" ? steps[steps.length - 1] : steps[0];
        const diffs = meta.op === "same" || meta.op === "refresh" ? [] : changedInputs(meta);
        if (diffs.length) run.diffs[name] = [...new Set([...(run.diffs[name] ?? []), ...diffs])].sort();
        if (meta.keys?.length) run.replaceKeys[name] = [...new Set([...(run.replaceKeys[name] ?? []), ...meta.keys])];
    };
    return {
        run,
        onOutput: (s) => { run.log += s; },
        onError: (s) => { run.log += s; },
        onEvent: (event) => {
            run.events.push(event);
            if (event.resourcePreEvent) note(event.resourcePreEvent.metadata);
            else if (event.resOutputsEvent) {
                const meta = event.resOutputsEvent.metadata;
                const seen = run.steps[nameOf(meta.urn)];
                if (!seen || seen[seen.length - 1] !== meta.op) note(meta);
            }
            if (event.resOpFailedEvent) run.failed.push(nameOf(event.resOpFailedEvent.metadata.urn));
        },
    };
}

export interface TestStack {
    name: string;
    consumer: Consumer;
    /** The stack's own folder: backend/, home/ (PULUMI_HOME) and work/ (Pulumi.yaml). */
    dir: string;
    /** The environment the CLI runs with (backend, passphrase, PULUMI_HOME). */
    env: Record<string, string>;
    /** The state file in the local backend (what `pulumi stack export` reads). */
    statePath: string;
    up(): Promise<RunResult>;
    preview(opts?: { expectNoChanges?: boolean }): Promise<RunResult>;
    refresh(): Promise<RunResult>;
    destroy(): Promise<RunResult>;
    setProgram(program: AutomationModule.PulumiFn): void;
    /** Plain `pulumi stack export` (secrets stay encrypted); Workspace.exportStack() would show them. */
    exportPlain(): string;
    /** The same stack and backend, driven through another consumer (a package upgrade). */
    withConsumer(consumer: Consumer): Promise<TestStack>;
    /** Removes the stack (force: resources left behind stay on the host) and its folder. */
    remove(): Promise<void>;
}

/** The project name of every test stack (the stack resource is named `${ENGINE_PROJECT}-${stack}`). */
export const ENGINE_PROJECT = "pll-engine-tests";

export interface Timing {
    stack: string;
    kind: RunKind;
    ms: number;
    ok: boolean;
}

export const timings: Timing[] = [];

export function timingReport(): string {
    const lines = timings.map((t) => `  ${t.kind.padEnd(8)} ${t.stack.padEnd(24)} ${(t.ms / 1000).toFixed(1).padStart(6)} s${t.ok ? "" : "  (failed)"}`);
    const byKind = new Map<RunKind, number[]>();
    for (const t of timings) byKind.set(t.kind, [...(byKind.get(t.kind) ?? []), t.ms]);
    const totals = [...byKind].map(([kind, ms]) => `${kind} ×${ms.length} ${(ms.reduce((a, b) => a + b, 0) / 1000).toFixed(1)} s`);
    return `engine runs (${timings.length}):\n${lines.join("\n")}\n  totals: ${totals.join(", ")}`;
}


/**
 * A stack named `stackName` on its own temp backend and PULUMI_HOME, running `program` inline.
 * `config` values go into the stack config (`{ value, secret: true }` for secrets).
 */
export async function openTestStack(consumer: Consumer, stackName: string, program: AutomationModule.PulumiFn,
    config: Record<string, string | { value: string; secret?: boolean }> = {}): Promise<TestStack> {
    const dir = scratchDir(`pll-stack-${stackName}-`);
    for (const sub of ["backend", "home", "work"]) mkdirSync(join(dir, sub));
    const env = {
        PULUMI_BACKEND_URL: `file://${join(dir, "backend")}`,
        PULUMI_CONFIG_PASSPHRASE: PASSPHRASE,
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_HOME: join(dir, "home"),
    };
    const stack = await attach(consumer, stackName, program, dir, env);
    const values = Object.fromEntries(Object.entries(config).map(([k, v]) => [k, typeof v === "string" ? { value: v } : v]));
    if (Object.keys(values).length) await stack.setAllConfig(values);
    return wrap(consumer, stackName, stack, dir, env);
}

async function attach(consumer: Consumer, stackName: string, program: AutomationModule.PulumiFn, dir: string, env: Record<string, string>): Promise<AutomationModule.Stack> {
    ensureCli();
    return consumer.automation.LocalWorkspace.createOrSelectStack(
        { stackName, projectName: ENGINE_PROJECT, program },
        { workDir: join(dir, "work"), envVars: env });
}

/**
 * The engine starts plugins (the dynamic provider) in this process's working directory, and the
 * provider resolves `@pulumi/pulumi` and the package from there: run inside the consumer's folder.
 */
async function inConsumer<T>(consumer: Consumer, work: () => Promise<T>): Promise<T> {
    const previous = process.cwd();
    process.chdir(consumer.dir);
    try {
        return await work();
    } finally {
        process.chdir(previous);
    }
}

function wrap(consumer: Consumer, name: string, stack: AutomationModule.Stack, dir: string, env: Record<string, string>): TestStack {
    const execute = async (kind: RunKind, go: (handlers: ReturnType<typeof collect>) => Promise<{ stdout: string; stderr: string; summary?: UpdateSummary; changeSummary?: AutomationModule.OpMap; outputs?: AutomationModule.OutputMap }>): Promise<RunResult> => {
        const handlers = collect(kind);
        const { run } = handlers;
        const started = Date.now();
        let ok = false;
        try {
            const result = await inConsumer(consumer, () => go(handlers));
            if (!run.log.trim()) run.log = `${result.stdout}${result.stderr}`;
            run.summary = result.summary;
            run.changes = (result.changeSummary ?? result.summary?.resourceChanges ?? {}) as RunResult["changes"];
            run.outputs = Object.fromEntries(Object.entries(result.outputs ?? {}).map(([k, v]) => [k, { value: v.value as unknown, secret: v.secret }]));
            ok = true;
            return run;
        } catch (error) {
            const cause = error instanceof Error ? error.message : String(error);
            if (!run.log.includes(cause.slice(0, 200))) run.log += `\n${cause}`;
            throw new EngineRunError(`pulumi ${kind} of stack ${name} failed${run.failed.length ? ` (${run.failed.join(", ")})` : ""}; engine log:\n${run.log}`, run);
        } finally {
            run.ms = Date.now() - started;
            if (EVENTS_DIR) {
                mkdirSync(EVENTS_DIR, { recursive: true });
                writeFileSync(join(EVENTS_DIR, `${String(++runCounter).padStart(3, "0")}-${name}-${kind}.json`), JSON.stringify(run.events, null, 1));
            }
            timings.push({ stack: name, kind, ms: run.ms, ok });
            console.log(`      [engine] ${kind} ${name}: ${(run.ms / 1000).toFixed(1)} s${ok ? ` ${JSON.stringify(run.changes)}` : " (failed)"}`);
        }
    };
    return {
        name,
        consumer,
        dir,
        env,
        statePath: join(dir, "backend", ".pulumi", "stacks", ENGINE_PROJECT, `${name}.json`),
        up: () => execute("up", (h) => stack.up({ onOutput: h.onOutput, onError: h.onError, onEvent: h.onEvent })),
        preview: (opts = {}) => execute("preview", (h) => stack.preview({ onOutput: h.onOutput, onError: h.onError, onEvent: h.onEvent, expectNoChanges: opts.expectNoChanges })),
        refresh: () => execute("refresh", (h) => stack.refresh({ onOutput: h.onOutput, onError: h.onError, onEvent: h.onEvent })),
        destroy: () => execute("destroy", (h) => stack.destroy({ onOutput: h.onOutput, onError: h.onError, onEvent: h.onEvent })),
        setProgram: (program) => {
            (stack.workspace as AutomationModule.LocalWorkspace).program = program;
        },
        exportPlain: () => execFileSync("pulumi", ["stack", "export", "--stack", name],
            { cwd: join(dir, "work"), env: { ...process.env, ...env }, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }),
        withConsumer: async (next) => {
            const program = (stack.workspace as AutomationModule.LocalWorkspace).program;
            if (!program) throw new Error(`stack ${name} has no inline program to carry over`);
            return wrap(next, name, await attach(next, name, program, dir, env), dir, env);
        },
        remove: async () => {
            await stack.workspace.removeStack(name, { force: true }).catch(() => undefined);
            if (!KEEP_TMP) rmSync(dir, { recursive: true, force: true });
        },
    };
}
