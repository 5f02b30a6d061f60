/**
 * Shared by the fault and load suites: an sshd of our OWN on 127.0.0.1:2223 (the rig's config and
 * keys, another port and pid file) that a test may kill and restart without touching the rig's
 * sshd on 2222; a `virsh` test double on that sshd's PATH (passes through to /usr/bin/virsh unless
 * a rule says to delay or fail one subcommand; it logs every call); counting server-side SSH sessions; holding a
 * domain's libvirt job for real; and the convergence check through the providers.
 */
import assert from "node:assert/strict";
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import { appendFileSync, closeSync, constants, existsSync, mkdirSync, readdirSync, openSync, readFileSync, rmSync, writeFileSync } from "fs";
import { join } from "path";
import type { ConnectionInputs } from "../../provider/contract";
import { LOCAL_URI, RigEnv, rigConnection, sleep, waitFor } from "../rig/rig-env";
import type { Provider } from "../rig/rig-env";

export const FAULT_PORT = 2223;
/** The own sshd of the suites that run beside the others (test/run-all.sh's second lane), where 2223 is taken. */
export const BESIDE_FAULT_PORT = 2226;

/**
 * The long suites (load, libvirtd restart) run in the test command; PLL_SKIP_LONG=1 skips them for
 * a quicker run by hand.
 */
export function longSuitesSkipped(): boolean {
    return process.env.PLL_SKIP_LONG === "1";
}
export const FAULT_GUESTS = ["pll-fault2", "pll-fault3", "pll-fault4"] as const;

// ------------------------------------------------------------------ processes, from /proc

interface Proc { pid: number; ppid: number; comm: string; state: string }

function processes(): Proc[] {
    const list: Proc[] = [];
    for (const entry of readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        try {
            const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
            const close = stat.lastIndexOf(")");
            const [state, ppid] = stat.slice(close + 2).split(" ");
            list.push({ pid: Number(entry), ppid: Number(ppid), comm: stat.slice(stat.indexOf("(") + 1, close), state });
        } catch {
            // The process ended while we looked.
        }
    }
    return list;
}

/** Live (not zombie) descendants of `root`, found by parent pid. */
function descendants(root: number): Proc[] {
    const all = processes().filter((p) => p.state !== "Z");
    const found: Proc[] = [];
    let frontier = [root];
    while (frontier.length) {
        const next = all.filter((p) => frontier.includes(p.ppid));
        found.push(...next);
        frontier = next.map((p) => p.pid);
    }
    return found;
}

function commandLineOf(pid: number): string {
    try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
    } catch {
        return "";
    }
}

function alive(pid: number): boolean {
    try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
    } catch {
        return false;
    }
}

/** ESTABLISHED TCP connections whose local port is `port` (server side), from `ss`. */
export function establishedOn(port: number): number {
    const out = execFileSync("ss", ["-Htn", "state", "established", `( sport = :${port} )`], { encoding: "utf8" });
    return out.split("\n").filter((l) => l.trim()).length;
}

// ------------------------------------------------------------------ our own sshd

/**
 * sshd on 127.0.0.1:2223 from the rig's sshd_config (same host key, same authorized_keys), with
 * the test double's folder first on PATH. Only this sshd (and the sshd processes it forked) is
 * ever killed.
 */
export class FaultSshd {
    readonly dir: string;
    readonly binDir: string;
    private readonly config: string;
    private readonly pidFile: string;

    constructor(private readonly env: RigEnv, readonly port = FAULT_PORT, private readonly extraConfig: readonly string[] = []) {
        this.dir = `/var/tmp/pll-faults-${port}`;
        this.binDir = join(this.dir, "bin");
        this.config = join(this.dir, "sshd_config");
        this.pidFile = join(this.dir, "sshd.pid");
    }

    /** Writes the config and the virsh double; starts sshd if it is not listening. */
    start(): void {
        mkdirSync(this.binDir, { recursive: true });
        writeFileSync(join(this.binDir, "virsh"), VIRSH_DOUBLE, { mode: 0o755 });
        this.clearRules();
        this.clearCalls();
        const rig = readFileSync(join(this.env.PLL_RIG_DIR, "sshd_config"), "utf8");
        const ours = rig
            .replace(/^Port .*$/m, `Port ${this.port}`)
            .replace(/^PidFile .*$/m, `PidFile ${this.pidFile}`)
            // The virsh double answers first; everything else is the host's own.
            // The extra lines first: sshd keeps the first value of a keyword (MaxSessions, say).
            .replace(/^Match /m, `${this.extraConfig.map((line) => `${line}\n`).join("")}SetEnv PATH=${
                this.binDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nMaxStartups 100\nMaxSessions 20\nMatch `);
        writeFileSync(this.config, ours);
        if (!this.listening()) this.restart();
    }

    /** sshd -f OURS; waits until the port accepts. */
    restart(): void {
        execFileSync("/usr/sbin/sshd", ["-f", this.config, "-E", join(this.dir, "sshd.log")], { stdio: "ignore" });
        const deadline = Date.now() + 5000;
        while (!this.listening()) {
            assert.ok(Date.now() < deadline, `our sshd does not listen on 127.0.0.1:${this.port}; see ${this.dir}/sshd.log`);
            spawnSync("sleep", ["0.05"]);
        }
    }

    listenerPid(): number | undefined {
        if (!existsSync(this.pidFile)) return undefined;
        const pid = Number(readFileSync(this.pidFile, "utf8").trim());
        return pid > 0 && alive(pid) && readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "sshd" ? pid : undefined;
    }

    /**
     * SIGKILL our listener and every sshd process it forked (one per connection), as a crash
     * would: the shells and virsh commands they started are left to run on, as they would be.
     */
    kill(): number[] {
        const listener = this.listenerPid();
        if (listener === undefined) return [];
        const victims = [listener, ...descendants(listener).filter((p) => p.comm === "sshd").map((p) => p.pid)];
        for (const pid of victims) {
            try {
                process.kill(pid, "SIGKILL");
            } catch {
                // Already gone.
            }
        }
        const deadline = Date.now() + 5000;
        while (victims.some(alive) || this.listening()) {
            assert.ok(Date.now() < deadline, `our sshd (${victims.join(" ")}) did not die`);
            spawnSync("sleep", ["0.05"]);
        }
        rmSync(this.pidFile, { force: true });
        return victims;
    }

    /**
     * Server side: connections (sshd children of our listener, one per connection), session
     * processes (anything not sshd under them: the shells and virsh of open channels) and
     * established TCP connections on the port.
     */
    sessions(): { sshdChildren: number; sessionProcesses: number; established: number } {
        const listener = this.listenerPid();
        if (listener === undefined) return { sshdChildren: 0, sessionProcesses: 0, established: establishedOn(this.port) };
        const children = processes().filter((p) => p.ppid === listener && p.state !== "Z").length;
        const sessionProcesses = descendants(listener).filter((p) => p.comm !== "sshd").length;
        return { sshdChildren: children, sessionProcesses, established: establishedOn(this.port) };
    }

    /**
     * The remote shell (the process sshd started for a channel) of a command running now whose
     * argv holds `text`: the shell itself (`sh -c SCRIPT`) or one of its commands. Its pid is its
     * process group (sshd makes it a session leader).
     */
    remoteShellOf(text: string): number | undefined {
        const listener = this.listenerPid();
        if (listener === undefined) return undefined;
        const tree = descendants(listener);
        const byPid = new Map(tree.map((p) => [p.pid, p]));
        const hit = tree.find((p) => p.comm !== "sshd" && commandLineOf(p.pid).includes(text));
        for (let p = hit; p; p = byPid.get(p.ppid)) {
            if (byPid.get(p.ppid)?.comm === "sshd") return p.pid;
        }
        return undefined;
    }

    /** Our sshd's log (since it started, or since a CountingSshd's last reset). */
    log(): string {
        const path = join(this.dir, "sshd.log");
        return existsSync(path) ? readFileSync(path, "utf8") : "";
    }

    /** SSH handshakes (authenticated connections) in the log: one "Accepted …" line each. */
    handshakes(): number {
        return this.log().split("\n").filter((l) => /\bAccepted \w+ for /.test(l)).length;
    }

    /** From the listening sockets (`ss`), not by connecting: a probe would itself be a session. */
    listening(): boolean {
        const out = execFileSync("ss", ["-Hltn", `( sport = :${this.port} )`], { encoding: "utf8" });
        return out.trim().length > 0;
    }

    /** The provider's connection through this sshd: the rig's key, the host key pinned. */
    connection(overrides: Partial<ConnectionInputs> = {}): ConnectionInputs {
        return rigConnection(this.env, { port: this.port, hostKey: this.env.PLL_HOST_KEY_FINGERPRINT, knownHostsPath: undefined, ...overrides });
    }

    stop(): void {
        this.kill();
    }

    // -------------------------------------------------------------- the virsh double

    /**
     * Makes the double act on SUBCOMMAND: "before S" (sleep, then run), "after S" (run, sleep, answer),
     * "fail TEXT", "lost S TEXT" (run, sleep, then answer TEXT on stderr with exit 1).
     */
    rule(subcommand: string, action: "before" | "after" | "fail" | "lost", argument: string): void {
        appendFileSync(join(this.dir, "rules"), `${subcommand} ${action} ${argument}\n`);
    }

    clearRules(): void {
        writeFileSync(join(this.dir, "rules"), "");
    }

    clearCalls(): void {
        writeFileSync(join(this.dir, "calls"), "");
    }

    /** Lines the double logged: "SUB start" for every call; with a rule also "SUB ran EXIT", "SUB answered", "SUB failed". */
    calls(): string[] {
        const path = join(this.dir, "calls");
        return existsSync(path) ? readFileSync(path, "utf8").split("\n").filter(Boolean) : [];
    }
}

/**
 * The `virsh` on our sshd's PATH. Without a rule it is /usr/bin/virsh. With one, for the first
 * non-option argument (the subcommand): `before S` sleeps S s then runs virsh; `after S` runs
 * virsh, logs its exit, sleeps S s, then prints its output (so a connection cut in the sleep loses
 * an answer to a change that happened); `fail TEXT` prints TEXT on stderr and exits 1 without
 * running anything (replays a message captured for real); `lost S TEXT` runs virsh, sleeps S s, then
 * prints TEXT on stderr and exits 1 instead of virsh's answer (libvirtd died after the change happened);
 * TEXT's `\n` are line breaks (the rule is read with printf: dash's echo would break it first).
 */
const VIRSH_DOUBLE = `#!/bin/sh
dir=$(dirname "$(dirname "$0")")
sub=
for a in "$@"; do case "$a" in -*) ;; *) sub=$a; break ;; esac; done
echo "$sub start" >>"$dir/calls"
rule=$(grep -m1 "^$sub " "$dir/rules" 2>/dev/null)
[ -n "$rule" ] || exec /usr/bin/virsh "$@"
action=$(printf "%s\\n" "$rule" | cut -d' ' -f2)
arg=$(printf "%s\\n" "$rule" | cut -d' ' -f3-)
case "$action" in
  before) sleep "$arg"; /usr/bin/virsh "$@"; rc=$?; echo "$sub ran $rc" >>"$dir/calls"; exit $rc ;;
  after)
    out=$(/usr/bin/virsh "$@" 2>&1); rc=$?
    echo "$sub ran $rc" >>"$dir/calls"
    sleep "$arg"
    echo "$sub answered" >>"$dir/calls"
    printf '%s\\n' "$out"; exit $rc ;;
  fail) echo "$sub failed" >>"$dir/calls"; printf '%s\\n' "$arg" >&2; exit 1 ;;
  lost)
    /usr/bin/virsh "$@" >/dev/null 2>&1; rc=$?
    echo "$sub ran $rc" >>"$dir/calls"
    sleep "\${arg%% *}"
    echo "$sub answered" >>"$dir/calls"
    printf '%b\\n' "\${arg#* }" >&2; exit 1 ;;
esac
exec /usr/bin/virsh "$@"
`;

// ------------------------------------------------------------------ a real libvirt job

/**
 * Holds DOMAIN's libvirt job for real: `virsh dump --live` into a FIFO whose reader never reads
 * (not --memory-only: that pauses the guest, and rig/up.sh would then try to resume it). libvirt keeps the async "dump" job until the reader goes (SIGPIPE ends the dump),
 * and any state change meanwhile waits 30 s, then fails "Timed out during operation: cannot
 * acquire state change lock (held by monitor=remoteDispatchDomainCoreDump)".
 */
export class HeldJob {
    private reader?: ChildProcess;
    private dump?: ChildProcess;
    private readonly fifo: string;
    dumpOutput = "";

    constructor(private readonly domain: string, dir: string) {
        this.fifo = join(dir, `job-${domain}.fifo`);
    }

    async hold(): Promise<void> {
        rmSync(this.fifo, { force: true });
        execFileSync("mkfifo", [this.fifo]);
        // Opens the FIFO for reading and never reads: the dump's writer blocks once the pipe is full.
        const fd = openSync(this.fifo, constants.O_RDONLY | constants.O_NONBLOCK);
        this.reader = spawn("sleep", ["600"], { stdio: [fd, "ignore", "ignore"] });
        // Only the reader may hold it: once it dies, the writer must get SIGPIPE.
        closeSync(fd);
        this.dump = spawn("virsh", ["-c", LOCAL_URI, "dump", "--live", this.domain, this.fifo], { stdio: ["ignore", "pipe", "pipe"] });
        this.dump.stdout?.on("data", (d: Buffer) => { this.dumpOutput += d.toString(); });
        this.dump.stderr?.on("data", (d: Buffer) => { this.dumpOutput += d.toString(); });
        await waitFor(`a dump job on ${this.domain}`, () => /Operation:\s+Dump/.test(domjobinfo(this.domain)), { timeoutMs: 15_000 });
    }

    /** Ends the reader (only the one we spawned): the dump fails with SIGPIPE and the job ends. */
    async release(): Promise<void> {
        if (this.reader?.pid && this.reader.exitCode === null) this.reader.kill("SIGKILL");
        if (this.dump && this.dump.exitCode === null) await new Promise((r) => this.dump?.once("exit", r));
        rmSync(this.fifo, { force: true });
        await waitFor(`the job on ${this.domain} to end`, () => /Job type:\s+None/.test(domjobinfo(this.domain)), { timeoutMs: 15_000 });
    }
}

function domjobinfo(domain: string): string {
    return spawnSync("virsh", ["-c", LOCAL_URI, "domjobinfo", domain], { encoding: "utf8" }).stdout ?? "";
}

// ------------------------------------------------------------------ an unwritable persistent config

/**
 * `chattr +i` on the domain's config file: libvirt (root) then fails its final rename ("cannot
 * rename file … Operation not permitted") after applying a change live. Only that one file.
 */
export function setConfigWritable(domain: string, writable: boolean): void {
    execFileSync("chattr", [writable ? "-i" : "+i", `/etc/libvirt/qemu/${domain}.xml`]);
}

// ------------------------------------------------------------------ convergence through the providers

/**
 * What `pulumi refresh` then `preview --expect-no-changes` do, through the provider: read (the
 * engine stores its props), then diff(stored, the program's inputs) must report no changes.
 */
export async function convergedViaProviders<I, O>(provider: Provider<I, O>, id: string, outs: O, inputs: I): Promise<O> {
    const read = await provider.read(id, outs);
    assert.equal(read.id, id, "refresh keeps the resource");
    assert.ok(read.props, "refresh returns props");
    const diff = await provider.diff(id, read.props, await provider.check(inputs));
    assert.equal(diff.changes, false, `preview after refresh expects no changes, got ${JSON.stringify(diff)}`);
    return read.props;
}

export { sleep };
