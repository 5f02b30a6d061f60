/**
 * Shared by the rig suites: the rig's settings (rig.env), the provider's `connection`, and the
 * test's OWN channel to check results — `virsh -c qemu:///system` run locally through
 * child_process, parsed here with plain regexes. Nothing in this file uses the provider's XML or
 * virsh code, so a test never checks the provider with the provider.
 *
 * Importing this file also registers a root `after` hook that ends the provider's pooled SSH
 * connections, so mocha exits when the run is over, and waits for the guest resets still booting.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync, spawnSync } from "child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "fs";
import { join, resolve } from "path";
import type * as pulumi from "@pulumi/pulumi";
import type {
    AttachedCdromInputs, AttachedCdromOutputs, AttachedDiskInputs, AttachedDiskOutputs, AttachedInterfaceInputs, AttachedInterfaceOutputs,
    ConnectionInputs, DomainResourcesInputs, DomainResourcesOutputs,
} from "../../provider/contract";
import { closeAllHosts, providers } from "../../provider/index";

/** The repository root (this file runs from dist/test/rig). */
export const REPO_ROOT = resolve(__dirname, "..", "..", "..");
const RIG_DIR = process.env.PLL_RIG_DIR ?? "/var/tmp/pll-rig";
export const LOCAL_URI = "qemu:///system";

export const GUEST1 = "pll-guest1";
export const GUEST2 = "pll-guest2";
export const NOOS = "pll-noos";

after(async function () {
    closeAllHosts();
    await settleResetsInBackground();
});

// ------------------------------------------------------------------ rig lifecycle

export interface RigEnv {
    PLL_RIG_DIR: string;
    PLL_SSH_HOST: string;
    PLL_SSH_PORT: string;
    PLL_SSH_USER: string;
    PLL_SSH_KEY: string;
    PLL_KNOWN_HOSTS: string;
    PLL_HOST_KEY_FINGERPRINT: string;
    PLL_BRIDGE: string;
    PLL_IMAGES: string;
    [key: string]: string;
}

function runScript(script: string, args: string[], timeoutMs: number): void {
    const result = spawnSync("bash", [join(REPO_ROOT, "rig", script), ...args], {
        cwd: REPO_ROOT, encoding: "utf8", timeout: timeoutMs, stdio: ["ignore", "pipe", "pipe"],
    });
    if (result.status !== 0) {
        const output = `${result.stdout ?? ""}${result.stderr ?? ""}`.trim().split("\n").slice(-15).join("\n");
        throw new Error(`rig/${script} ${args.join(" ")} failed (${result.error?.message ?? `exit ${result.status}`}):\n${output}`);
    }
}

/** Parses rig.env (`export K=V`, `export K='V'`, `export K="V"`). */
export function loadRigEnv(): RigEnv {
    const path = join(RIG_DIR, "rig.env");
    const env: Record<string, string> = {};
    for (const line of readFileSync(path, "utf8").split("\n")) {
        const match = /^export\s+([A-Z0-9_]+)=(.*)$/.exec(line.trim());
        if (!match) continue;
        let value = match[2];
        if ((value.startsWith("'") && value.endsWith("'")) || (value.startsWith('"') && value.endsWith('"'))) value = value.slice(1, -1);
        env[match[1]] = value;
    }
    for (const key of ["PLL_SSH_HOST", "PLL_SSH_PORT", "PLL_SSH_USER", "PLL_SSH_KEY", "PLL_KNOWN_HOSTS", "PLL_HOST_KEY_FINGERPRINT", "PLL_BRIDGE", "PLL_IMAGES"]) {
        assert.ok(env[key], `${path} lacks ${key}`);
    }
    return env as RigEnv;
}

const RIG_UP_TIMEOUT_MS = 15 * 60 * 1000;
const RESET_TIMEOUT_MS = 10 * 60 * 1000;
let rigIsUp = false;

/**
 * For each suite's `before`: rig/up.sh once per mocha process (the test command prepared the rig
 * just before; ~4 s each time it runs), then rig.env. Suites leave their guests to be reset, so a
 * later suite needs no second pass; one that breaks the rig on purpose calls {@link rigRestore}.
 */
export function rigUp(): RigEnv {
    if (!rigIsUp) rigRestore();
    return loadRigEnv();
}

/**
 * rig/up.sh now, whatever ran before: libvirtd, sshd, guests and namespaces brought back; with
 * `only`, of the guests only those (up.sh --only): a lane beside must not restart, from the rig's
 * definition, a guest another lane's test has shut off for a moment.
 */
export function rigRestore(only: string[] = []): RigEnv {
    runScript("up.sh", only.flatMap((name) => ["--only", name]), RIG_UP_TIMEOUT_MS);
    rigIsUp = true;
    return loadRigEnv();
}

/**
 * rig/reset-guest.sh NAME: destroy, re-define, start, wait for the guest and its balloon (at once
 * if the guest is unchanged since its last reset). Waits first for the resets of NAME still
 * booting from {@link resetGuestInBackground}: one that took the guest's lock only after this one
 * would reset it again under the suite that has begun to use it. For a suite's `before`.
 */
export function resetGuest(name: string): void {
    for (const child of resetsInBackground.get(name) ?? []) waitUntilExited(child);
    runScript("reset-guest.sh", [name], RESET_TIMEOUT_MS);
}

interface BackgroundReset {
    pid: number;
    exited: Promise<void>;
}
const resetsInBackground = new Map<string, BackgroundReset[]>();

/**
 * For a suite's `after`: the reset starts now and boots (10-40 s under TCG) while the next suites
 * run on other guests; the next suite that uses NAME waits for it in its own {@link resetGuest}.
 */
export function resetGuestInBackground(name: string): void {
    const { pid, ended } = spawnReset(name);
    // Not the suite's failure: the next resetGuest(name) finds the guest off its baseline and resets it again.
    const exited = ended.catch((error: Error) => console.error(`      (background reset failed: ${error.message})`))
        .finally(() => resetsInBackground.set(name, (resetsInBackground.get(name) ?? []).filter((reset) => reset.pid !== pid)));
    if (pid > 0) resetsInBackground.set(name, [...(resetsInBackground.get(name) ?? []), { pid, exited }]);
}

/** rig/reset-guest.sh NAME without blocking (several guests at once), once NAME's background resets are done. */
export async function resetGuestAsync(name: string): Promise<void> {
    await backgroundResetsDone(name);
    await spawnReset(name).ended;
}

/** rig/reset-guest.sh NAME as a child process: its pid at once, and its end (rejected with the script's last lines). */
function spawnReset(name: string): { pid: number; ended: Promise<void> } {
    return spawnScript("reset-guest.sh", [name]);
}

/**
 * A test's own domain NAME, defined from XMLFILE and shut off, started at its baseline: restored from
 * the baseline saved for that definition, or booted (ready line, balloon) and then saved (rig/lib.sh).
 */
export async function startAtBaseline(name: string, xmlFile: string): Promise<void> {
    await spawnScript("start-at-baseline.sh", [name, xmlFile]).ended;
}

function spawnScript(script: string, args: string[]): { pid: number; ended: Promise<void> } {
    let pid = 0;
    const ended = new Promise<void>((resolve, reject) => {
        const child = execFile("bash", [join(REPO_ROOT, "rig", script), ...args], { cwd: REPO_ROOT, timeout: RESET_TIMEOUT_MS }, (error, stdout, stderr) =>
            error ? reject(new Error(`rig/${script} ${args.join(" ")} failed (${error.message}):\n${`${stdout}${stderr}`.trim().split("\n").slice(-15).join("\n")}`)) : resolve());
        pid = child.pid ?? 0;
    });
    return { pid, ended };
}

/** The background resets of NAME are done. */
async function backgroundResetsDone(name: string): Promise<void> {
    await Promise.all((resetsInBackground.get(name) ?? []).map((reset) => reset.exited));
}

/** Blocks (a suite's synchronous `before`) until the process has exited; its zombie counts as gone. */
function waitUntilExited(reset: BackgroundReset): void {
    const deadline = Date.now() + RESET_TIMEOUT_MS;
    const pause = new Int32Array(new SharedArrayBuffer(4));
    while (processRuns(reset.pid)) {
        assert.ok(Date.now() < deadline, `the background reset (pid ${reset.pid}) still runs after ${RESET_TIMEOUT_MS / 1000} s`);
        Atomics.wait(pause, 0, 0, 200);
    }
}

function processRuns(pid: number): boolean {
    try {
        // Field 3 of /proc/PID/stat, after the parenthesised command name: Z for a zombie.
        return !/\)\s+Z\s/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
    } catch {
        return false;
    }
}

/** Waits for every background reset (the run's end; a guest left booting would hold its lock). */
async function settleResetsInBackground(): Promise<void> {
    await Promise.all([...resetsInBackground.values()].flat().map((reset) => reset.exited));
    resetsInBackground.clear();
}

/**
 * The provider's connection to the rig: root with the rig key, host key from the rig's known_hosts.
 * With PLL_THROUGH_JUMP_HOST=1 the same machine is reached as namespace host pll-hv1 through the
 * rig's bastion (rig/netns-up.sh): it shares the file system and libvirtd, so a suite runs unchanged
 * through a jump host (test/faults/through-jump-host.test.ts does that).
 */
export function rigConnection(env: RigEnv, overrides: Partial<ConnectionInputs> = {}): ConnectionInputs {
    const direct: ConnectionInputs = {
        host: env.PLL_SSH_HOST,
        port: Number(env.PLL_SSH_PORT),
        user: env.PLL_SSH_USER,
        privateKey: readFileSync(env.PLL_SSH_KEY, "utf8"),
        knownHostsPath: env.PLL_KNOWN_HOSTS,
    };
    return { ...direct, ...(process.env.PLL_THROUGH_JUMP_HOST === "1" && throughJumpHost(env)), ...overrides };
}

function throughJumpHost(env: RigEnv): Partial<ConnectionInputs> {
    const values = new Map([...readFileSync(join(env.PLL_RIG_DIR ?? RIG_DIR, "netns.env"), "utf8").matchAll(/^export (\w+)="?([^"\n]*)"?$/gm)]
        .map((m) => [m[1], m[2]]));
    const hv1 = values.get("PLL_NS_HV_ADDRS")?.split(" ")[0];
    assert.ok(hv1 && values.get("PLL_NS_BASTION"), "netns.env lacks the namespace hosts: run rig/up.sh");
    return { host: hv1, port: 22, knownHostsPath: values.get("PLL_NS_KNOWN_HOSTS"), proxyJump: `root@${values.get("PLL_NS_BASTION")}`, sshConfig: false };
}

// ------------------------------------------------------------------ the test's own virsh channel

/** Runs `virsh -c qemu:///system ARGS` locally; throws with virsh's stderr on a non-zero exit. */
export function virshLocal(args: string[]): string {
    const result = virshLocalResult(args);
    if (result.status !== 0) throw new Error(`virsh ${args.join(" ")} failed (exit ${result.status}): ${result.stderr.trim()}`);
    return result.stdout;
}

export function virshLocalResult(args: string[]): { status: number; stdout: string; stderr: string } {
    const result = spawnSync("virsh", ["-c", LOCAL_URI, ...args], { encoding: "utf8", timeout: 120_000 });
    return { status: result.status ?? -1, stdout: result.stdout ?? "", stderr: `${result.stderr ?? ""}${result.error ? String(result.error) : ""}` };
}

export function liveXml(domain: string): string {
    return virshLocal(["dumpxml", domain]);
}

export function configXml(domain: string): string {
    return virshLocal(["dumpxml", "--inactive", domain]);
}

export function domState(domain: string): string {
    return virshLocal(["domstate", domain]).trim();
}

/** `virsh domid`: changes whenever the domain is restarted. */
export function domId(domain: string): string {
    return virshLocal(["domid", domain]).trim();
}

/** `virsh dommemstat` as numbers (KiB), e.g. { actual: 262144, … }. */
export function memStats(domain: string): Record<string, number> {
    const stats: Record<string, number> = {};
    for (const line of virshLocal(["dommemstat", domain]).split("\n")) {
        const match = /^\s*(\S+)\s+(\d+)\s*$/.exec(line);
        if (match) stats[match[1]] = Number(match[2]);
    }
    return stats;
}

/** `virsh domblklist --details` rows. */
export function blockList(domain: string, inactive = false): Array<{ type: string; device: string; target: string; source: string }> {
    const out = virshLocal(["domblklist", domain, "--details", ...(inactive ? ["--inactive"] : [])]);
    return out.split("\n").slice(2).map((l) => l.trim()).filter(Boolean).map((l) => {
        const [type, device, target, ...rest] = l.split(/\s+/);
        return { type, device, target, source: rest.join(" ") };
    });
}

// ------------------------------------------------------------------ tiny XML readers (regex)

function attr(tagText: string | undefined, name: string): string | undefined {
    if (!tagText) return undefined;
    const match = new RegExp(`\\s${name}=(['"])(.*?)\\1`).exec(tagText);
    return match?.[2];
}

function firstTag(block: string, tag: string): string | undefined {
    return new RegExp(`<${tag}(\\s[^>]*)?/?>`).exec(block)?.[0];
}

export function currentMemoryKiB(xml: string): number {
    const match = /<currentMemory unit='KiB'>(\d+)<\/currentMemory>/.exec(xml);
    assert.ok(match, "no <currentMemory unit='KiB'> in the XML");
    return Number(match[1]);
}

export function maxMemoryKiB(xml: string): number {
    const match = /<memory unit='KiB'>(\d+)<\/memory>/.exec(xml);
    assert.ok(match, "no <memory unit='KiB'> in the XML");
    return Number(match[1]);
}

/** <vcpu … current='N'>MAX</vcpu>: current defaults to the maximum when absent. */
export function vcpuCounts(xml: string): { current: number; max: number } {
    const match = /<vcpu([^>]*)>(\d+)<\/vcpu>/.exec(xml);
    assert.ok(match, "no <vcpu> in the XML");
    const max = Number(match[2]);
    const current = attr(match[1], "current");
    return { current: current === undefined ? max : Number(current), max };
}

export interface XmlDisk {
    type?: string;
    device?: string;
    target?: string;
    bus?: string;
    source?: string;
    driverType?: string;
    cache?: string;
    io?: string;
    readonly: boolean;
    xml: string;
}

export function disksIn(xml: string): XmlDisk[] {
    return [...xml.matchAll(/<disk\s[^>]*>[\s\S]*?<\/disk>/g)].map(([block]) => {
        const open = firstTag(block, "disk");
        const driver = firstTag(block, "driver");
        const target = firstTag(block, "target");
        const source = firstTag(block, "source");
        return {
            type: attr(open, "type"),
            device: attr(open, "device"),
            target: attr(target, "dev"),
            bus: attr(target, "bus"),
            source: attr(source, "file") ?? attr(source, "dev"),
            driverType: attr(driver, "type"),
            cache: attr(driver, "cache"),
            io: attr(driver, "io"),
            readonly: /<readonly\/>/.test(block),
            xml: block,
        };
    });
}

export function diskByTarget(xml: string, target: string): XmlDisk | undefined {
    return disksIn(xml).find((d) => d.target === target);
}

/** How many disks with this source the running domain and its config hold: 1/1 is "attached once". */
export function diskCount(domain: string, source: string): { live: number; config: number } {
    const count = (xml: string) => disksIn(xml).filter((d) => d.source === source).length;
    return { live: count(liveXml(domain)), config: count(configXml(domain)) };
}

export function diskBySource(xml: string, source: string): XmlDisk | undefined {
    return disksIn(xml).find((d) => d.source === source);
}

export interface XmlInterface {
    type?: string;
    mac?: string;
    bridge?: string;
    model?: string;
    linkState?: string;
    xml: string;
}

export function interfacesIn(xml: string): XmlInterface[] {
    return [...xml.matchAll(/<interface\s[^>]*>[\s\S]*?<\/interface>/g)].map(([block]) => ({
        type: attr(firstTag(block, "interface"), "type"),
        mac: attr(firstTag(block, "mac"), "address")?.toLowerCase(),
        bridge: attr(firstTag(block, "source"), "bridge"),
        model: attr(firstTag(block, "model"), "type"),
        linkState: attr(firstTag(block, "link"), "state"),
        xml: block,
    }));
}

export function interfaceByMac(xml: string, mac: string): XmlInterface | undefined {
    return interfacesIn(xml).find((i) => i.mac === mac.toLowerCase());
}

// ------------------------------------------------------------------ images

let imageCounter = 0;

/** A fresh image under PLL_IMAGES, made with qemu-img; its path. */
export function createImage(env: RigEnv, label: string, format: "raw" | "qcow2" = "raw", size = "16M"): string {
    const path = join(env.PLL_IMAGES, `test-${label}-${process.pid}-${++imageCounter}.${format === "raw" ? "img" : "qcow2"}`);
    rmSync(path, { force: true });
    execFileSync("qemu-img", ["create", "-q", "-f", format, path, size], { stdio: ["ignore", "ignore", "pipe"] });
    return path;
}

/** `qemu-img info --output=json`: format and virtual size, to check the image the test made. */
export function imageInfo(path: string): { format: string; virtualSize: number } {
    const info = JSON.parse(execFileSync("qemu-img", ["info", "-U", "--output=json", path], { encoding: "utf8" })) as { format: string; "virtual-size": number };
    return { format: info.format, virtualSize: info["virtual-size"] };
}

/** A small file used as CD-ROM media (QEMU does not look inside it; the guest need not mount it). */
export function createIso(env: RigEnv, label: string): string {
    const path = join(env.PLL_IMAGES, `test-${label}-${process.pid}-${++imageCounter}.iso`);
    const block = Buffer.alloc(64 * 1024, 0);
    block.write(`pulumi-libvirt-live test media ${label}\n`);
    writeFileSync(path, Buffer.concat(Array.from({ length: 16 }, () => block)));
    return path;
}

export function removeFiles(paths: Iterable<string>): void {
    for (const path of paths) if (existsSync(path)) rmSync(path, { force: true });
}

/** A path under PLL_IMAGES that does not exist. */
export function missingPath(env: RigEnv, label: string): string {
    const path = join(env.PLL_IMAGES, `missing-${label}-${process.pid}-${Date.now()}.img`);
    rmSync(path, { force: true });
    return path;
}

// ------------------------------------------------------------------ waiting

export function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls `check` until it returns something other than undefined/false; fails after `timeoutMs`
 * naming `what` and the last value `describe` gives (or the last error `check` threw).
 */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>,
    { timeoutMs = 30_000, intervalMs = 250, describe }: { timeoutMs?: number; intervalMs?: number; describe?: () => string } = {}): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    for (;;) {
        try {
            const value = await check();
            if (value !== undefined && value !== false) return value;
            lastError = undefined;
        } catch (error) {
            lastError = error;
        }
        if (Date.now() >= deadline) {
            const last = lastError ? `; last error: ${String(lastError)}` : describe ? `; last seen: ${describe()}` : "";
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}`);
        }
        await sleep(intervalMs);
    }
}

/** The guest's console shows the rig's ready line (printed by its init once modules loaded). */
export async function waitGuestReady(env: RigEnv, domain: string, timeoutMs = 90_000): Promise<void> {
    const log = join(env.PLL_RIG_DIR ?? RIG_DIR, `console-${domain}.log`);
    await waitFor(`${domain} to print PLL-GUEST-READY`, () => existsSync(log) && readFileSync(log, "latin1").includes("PLL-GUEST-READY"),
        { timeoutMs, intervalMs: 250, describe: () => (existsSync(log) ? readFileSync(log, "latin1").slice(-300) : "no console log") });
}

// ------------------------------------------------------------------ typed provider calls, engine-style

export interface Provider<I, O> {
    /** The engine's check; fails the test if check reports failures. */
    check(news: I): Promise<I>;
    /** check failures (for tests that expect some). */
    checkFailures(news: I): Promise<Array<{ property: string; reason: string }>>;
    diff(id: string, olds: O, news: I): Promise<pulumi.dynamic.DiffResult>;
    /** check, then create, as the engine does. */
    create(inputs: I): Promise<{ id: string; outs: O }>;
    read(id: string, outs: O): Promise<{ id?: string; props?: O }>;
    update(id: string, olds: O, news: I): Promise<O>;
    delete(id: string, outs: O): Promise<void>;
    /**
     * What `pulumi up` does with a changed resource: check, diff; a diff with replaces runs delete
     * then create when deleteBeforeReplace is set, else create then delete; otherwise update.
     */
    apply(id: string, olds: O, news: I): Promise<{ id: string; outs: O; replaced: boolean }>;
}

export function typed<I, O>(provider: pulumi.dynamic.ResourceProvider): Provider<I, O> {
    const p = provider as Required<pulumi.dynamic.ResourceProvider>;
    const checkFailures = async (news: I) => [...((await p.check({}, news)).failures ?? [])];
    const check = async (news: I): Promise<I> => {
        const result = await p.check({}, news);
        assert.deepEqual(result.failures ?? [], [], "check() reported failures");
        return result.inputs as I;
    };
    const create = async (inputs: I) => {
        const result = await p.create(await check(inputs));
        return { id: result.id, outs: result.outs as O };
    };
    const self: Provider<I, O> = {
        check,
        checkFailures,
        diff: (id, olds, news) => p.diff(id, olds, news),
        create,
        read: async (id, outs) => {
            const result = await p.read(id, outs);
            return { id: result.id, props: result.props as O | undefined };
        },
        update: async (id, olds, news) => (await p.update(id, olds, await check(news))).outs as O,
        delete: (id, outs) => p.delete(id, outs),
        apply: async (id, olds, news) => {
            const inputs = await check(news);
            const diff = await p.diff(id, olds, inputs);
            if ((diff.replaces ?? []).length > 0) {
                if (diff.deleteBeforeReplace) await p.delete(id, olds);
                const created = await create(inputs);
                if (!diff.deleteBeforeReplace) await p.delete(id, olds);
                return { ...created, replaced: true };
            }
            return { id, outs: await self.update(id, olds, inputs), replaced: false };
        },
    };
    return self;
}

/** The four providers, typed, as the engine calls them. */
export function typedProviders() {
    return {
        disks: typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk),
        nics: typed<AttachedInterfaceInputs, AttachedInterfaceOutputs>(providers.attachedInterface),
        cdroms: typed<AttachedCdromInputs, AttachedCdromOutputs>(providers.attachedCdrom),
        resources: typed<DomainResourcesInputs, DomainResourcesOutputs>(providers.domainResources),
    };
}

/** Asserts a promise rejects with an error of `type` whose message matches every pattern; returns it. */
export async function rejectsWith<E extends Error>(promise: Promise<unknown>, type: abstract new (...args: never[]) => E,
    patterns: RegExp[] = []): Promise<E> {
    let caught: unknown;
    try {
        await promise;
    } catch (error) {
        caught = error;
    }
    assert.ok(caught !== undefined, `expected a ${type.name}, but the call succeeded`);
    assert.ok(caught instanceof type, `expected a ${type.name}, got ${(caught as Error)?.name}: ${(caught as Error)?.message}`);
    for (const pattern of patterns) assert.match(caught.message, pattern);
    return caught;
}
