/**
 * What one host's SSH connection owes every operation on it (issue 14), on pll-fault4 and
 * pll-noos (read only) through sshds of our own on 127.0.0.1:2241-2243 and the rig's sshd:
 * a refused channel is asked for again on the same connection, an exec past its bound loses
 * only its own outcome, a login shell that runs nothing is named as such (with its exit code
 * and its words), a script larger than one argument may hold runs, and a known_hosts line
 * marked @revoked refuses the key before anything runs.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "child_process";
import { mkdtempSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import type { ConnectionInputs, DomainResourcesInputs, DomainResourcesOutputs } from "../../provider/contract";
import { executeRound, RecentRead } from "../../provider/batch/batch-exec";
import { closeAllHosts, HostKeyError, HostUnreachableError, providers, RemoteShellError } from "../../provider/index";
import { remoteHostFor } from "../../provider/transport/ssh-host";
import { Virsh } from "../../provider/virsh/virsh";
import { configXml, domState, liveXml, LOCAL_URI, NOOS, rejectsWith, resetGuest, resetGuestInBackground, RigEnv, rigConnection, rigUp, typed, waitFor } from "../rig/rig-env";
import { FaultSshd } from "./fault-env";

const GUEST = "pll-fault4";

/** Every exec of the pooled connection for `connection`, as it ended: resolved, or rejected with its error. */
function recordExecs(connection: ConnectionInputs): Array<{ ok: boolean; error?: HostUnreachableError }> {
    const host = remoteHostFor(connection);
    const outcomes: Array<{ ok: boolean; error?: HostUnreachableError }> = [];
    const exec = host.exec.bind(host);
    host.exec = (...args) => exec(...args).then((result) => {
        outcomes.push({ ok: true });
        return result;
    }, (error: HostUnreachableError) => {
        outcomes.push({ ok: false, error });
        throw error;
    });
    return outcomes;
}

/** Waits for the remote shell reading `domain` under our sshd and stops its process group; its pid (also kept in `stopped`). */
function stopShellReading(sshd: FaultSshd, domain: string, stopped: number[]): Promise<number> {
    return waitFor(`the remote shell reading ${domain}`, () => {
        const shell = sshd.remoteShellOf(`--domain=${domain}`);
        if (shell !== undefined) {
            signalGroup(shell, "SIGSTOP");
            stopped.push(shell);
        }
        return shell;
    }, { timeoutMs: 20_000, intervalMs: 20 });
}

/** Ends the remote shells a test stopped (SIGKILL reaches a stopped process; CONT lets it act on it). */
function killStopped(stopped: number[]): void {
    for (const pid of stopped) {
        signalGroup(pid, "SIGKILL");
        signalGroup(pid, "SIGCONT");
    }
}

/** Stops (or continues) a remote shell's whole process group. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
    try {
        process.kill(-pid, signal);
    } catch {
        // Already gone.
    }
}

describe("faults: one host's connection, shared by its operations (pll-fault4, pll-noos)", function () {
    this.timeout(300_000);
    const resources = typed<DomainResourcesInputs, DomainResourcesOutputs>(providers.domainResources);
    const readWith = (connection: ConnectionInputs, domain: string) => resources.read("probe", { connection, domain } as DomainResourcesOutputs);
    let env: RigEnv;
    const sshds: FaultSshd[] = [];

    before(function () {
        this.timeout(600_000);
        env = rigUp();
        for (const guest of [GUEST, NOOS]) resetGuest(guest); // a background reset of an earlier suite may still be booting them
    });
    afterEach(() => closeAllHosts());
    after(() => {
        for (const sshd of sshds) sshd.stop();
    });

    function ownSshd(port: number, extra: string[] = []): FaultSshd {
        const sshd = new FaultSshd(env, port, extra);
        sshds.push(sshd);
        sshd.start();
        return sshd;
    }

    it("an sshd with MaxSessions 1 refuses the second channel: both reads complete on the one connection, no outcome is unknown", async () => {
        const sshd = ownSshd(2242, ["MaxSessions 1"]);
        // Each read holds its channel for over 2 s, so the two overlap.
        sshd.rule("dumpxml", "before", "1");
        const connection = sshd.connection();
        const execs = recordExecs(connection);
        const logins = sshd.handshakes();
        const [fault4, noos] = await Promise.all([readWith(connection, GUEST), readWith(connection, NOOS)]);
        assert.equal(fault4.props?.state, domState(GUEST));
        assert.equal(noos.props?.state, domState(NOOS));
        assert.match(sshd.log(), /no more sessions/, "the server refused a channel (else this test proves nothing)");
        assert.deepEqual(execs.filter((e) => !e.ok).map((e) => e.error?.message), [], "no exec failed");
        assert.equal(sshd.handshakes() - logins, 1, "one connection throughout");
    });

    it("one exec held past its bound (its remote shell stopped): only that exec's outcome is unknown; the other, in flight meanwhile, completes on the same connection", async () => {
        const sshd = ownSshd(2241);
        // Each read's first command lasts 0.5 s: time to find its remote shell.
        sshd.rule("domstate", "before", "0.5");
        // pll-noos: bound 3 × 1 s + 30 s; pll-fault4: 3 × 20 s + 30 s. One pooled connection for both.
        const short = sshd.connection({ operationTimeout: 1 });
        const long = sshd.connection({ operationTimeout: 20 });
        assert.equal(remoteHostFor(short), remoteHostFor(long));
        const execs = recordExecs(short);
        const logins = sshd.handshakes();
        const stopped: number[] = [];
        try {
            const reads = Promise.all([readWith(short, NOOS), readWith(long, GUEST)]);
            const [held, other] = await Promise.all([NOOS, GUEST].map((domain) => stopShellReading(sshd, domain, stopped)));
            await waitFor("the held exec to be abandoned", () => execs.length > 0, { timeoutMs: 90_000 });
            signalGroup(other, "SIGCONT");
            const [noos, fault4] = await reads;
            assert.equal(noos.props?.state, domState(NOOS), "the held read was read again");
            assert.equal(fault4.props?.state, domState(GUEST));
            const failed = execs.filter((e) => !e.ok);
            assert.equal(failed.length, 1, `one exec abandoned: ${failed.map((e) => e.error?.message).join(" | ")}`);
            assert.ok(failed[0].error instanceof HostUnreachableError && failed[0].error.outcomeUnknown, String(failed[0].error));
            assert.match(failed[0].error.message, /did not finish within \d+ s and was abandoned/);
            assert.equal(sshd.handshakes() - logins, 1, "the other exec and the re-read ran on the same connection");
            assert.ok(held !== other);
        } finally {
            killStopped(stopped);
        }
    });

    it("MaxSessions 1, and the one session held by an abandoned exec (its shell stopped): the connection that refuses every session is replaced once, the re-read completes", async () => {
        const sshd = ownSshd(2242, ["MaxSessions 1"]);
        sshd.rule("domstate", "before", "0.5");
        const connection = sshd.connection({ operationTimeout: 1 });
        const execs = recordExecs(connection);
        const logins = sshd.handshakes();
        const stopped: number[] = [];
        try {
            const read = readWith(connection, NOOS);
            await stopShellReading(sshd, NOOS, stopped);
            assert.equal((await read).props?.state, domState(NOOS));
            assert.deepEqual(execs.map((e) => e.ok), [false, true], "the held exec abandoned, the re-read answered");
            assert.ok(execs[0].error?.outcomeUnknown);
            assert.equal(sshd.handshakes() - logins, 2, "one new connection, for the re-read");
        } finally {
            killStopped(stopped);
        }
    });

    describe("a script that fails outside its frames (own sshd on 2243)", () => {
        const user = "pll-t14-nologin";
        let sshd: FaultSshd;
        before(() => {
            sshd = ownSshd(2243);
            spawnSync("userdel", [user]);
            // The rig's AuthorizedKeysFile serves every user: the rig key logs in as this one too.
            // `*`, not useradd's `!`: sshd (no PAM) refuses a locked account before any shell runs.
            execFileSync("useradd", ["-M", "-d", "/", "-s", "/usr/sbin/nologin", "-p", "*", user]);
        });
        after(() => {
            spawnSync("userdel", [user]);
        });

        it("a login shell that refuses to run anything (nologin): the shell's exit code and own words, not 'check that the domain exists'", async () => {
            const error = await rejectsWith(readWith(sshd.connection({ user }), NOOS), RemoteShellError, [
                /the remote shell failed before running any command \(exit 1\)/, /This account is currently not available/,
                /Fix: the SSH user's login shell must run `\/bin\/sh -s`: check its shell \(`getent passwd USER`: not \/usr\/sbin\/nologin/,
                new RegExp(`host ${user}@127\\.0\\.0\\.1:2243`),
            ]);
            assert.ok(!/check that the domain exists|cannot read the domain/.test(error.message), error.message);
            assert.equal(error.exitCode, 1);
        });

        it("a step whose stdin is larger than 128 KiB (one argument's limit on Linux) runs: the script goes on the channel's stdin", async () => {
            const stdin = "0123456789abcdef".repeat(200 * 64);
            const virsh = new Virsh(remoteHostFor(sshd.connection()), LOCAL_URI, GUEST, false, 60);
            const [round] = await executeRound(virsh, [{ steps: [{ args: ["wc", "-c"], host: true, stdin }] }], new RecentRead());
            const [outcome] = round.steps;
            assert.ok(outcome.ran, "the step ran");
            assert.deepEqual([outcome.exitCode, outcome.stdout.trim()], [0, String(stdin.length)], outcome.stderr);
            assert.equal(round.snapshot().state, domState(GUEST));
        });
    });

    describe("known_hosts @revoked (the rig's sshd on 2222)", () => {
        let dir = "";
        before(() => {
            dir = mkdtempSync(join(tmpdir(), "pll-t14-revoked-"));
        });
        after(() => {
            rmSync(dir, { recursive: true, force: true });
            resetGuestInBackground(GUEST);
        });

        it("the host's key listed as valid and marked @revoked: refused before any command runs, naming the file", async () => {
            const path = join(dir, "known_hosts");
            writeFileSync(path, `[127.0.0.1]:2222 ${env.PLL_HOST_KEY}\n@revoked [127.0.0.1]:* ${env.PLL_HOST_KEY}\n`);
            const [live, config] = [liveXml(GUEST), configXml(GUEST)];
            const connection = rigConnection(env, { knownHostsPath: path, hostKey: undefined, proxyJump: undefined, sshConfig: false });
            const error = await rejectsWith(resources.create({ connection, domain: GUEST, memory: "200MiB" }), HostKeyError, [
                new RegExp(`SSH host key ${env.PLL_HOST_KEY_FINGERPRINT.replace(/[+/]/g, "\\$&")} is marked @revoked in ${path}`),
                /host root@127\.0\.0\.1:2222/,
            ]);
            assert.ok(!/is not in|does not match/.test(error.message), error.message);
            assert.equal(liveXml(GUEST), live, "the memory change never ran");
            assert.equal(configXml(GUEST), config);
        });
    });
});
