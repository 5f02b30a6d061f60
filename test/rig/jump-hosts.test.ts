/**
 * Reaching hypervisors as operators do (issue 10), against the rig's namespace hosts: a bastion
 * the test's namespace reaches, hypervisors only the bastion reaches, one more behind pll-hv1.
 * Agent, SSH config aliases, one and two jump hosts, host keys at each hop, a bastion that is down
 * or restarts, hostile input through a hop, and handshakes counted in the sshd logs.
 * Each pll-hvN manages guest pll-netN (reads, and one disk attached and detached on pll-net3).
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import type { AttachedDiskInputs, AttachedDiskOutputs, ConnectionInputs, DomainResourcesInputs, DomainResourcesOutputs } from "../../provider/contract";
import { AuthenticationError, closeAllHosts, HostKeyError, HostUnreachableError, providers, VirshError } from "../../provider/index";
import { RecordingBastion } from "../faults/recording-bastion";
import { Canary, checkRefusal } from "../faults/security-fixtures";
import { acceptedLogins, hostFingerprint, loadNetnsEnv, namespaceSshd, NetnsEnv, TestAgent, viaBastion } from "./netns-env";
import { createImage, diskCount, domState, NOOS, REPO_ROOT, rejectsWith, RigEnv, rigConnection, rigUp, typed } from "./rig-env";

/** Our own bastion's port (this suite's range: 2240-2249). */
const BASTION_PORT = 2240;
/** A hypervisor password that must never reach a jump host. */
const HV_PASSWORD = "pll-hv-password-not-for-the-bastion";

describe("rig: jump hosts, ssh-agent and SSH config (namespace hosts)", function () {
    this.timeout(120_000);
    const resources = typed<DomainResourcesInputs, DomainResourcesOutputs>(providers.domainResources);
    const disks = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    let rig: RigEnv;
    let ns: NetnsEnv;
    let dir = "";
    let otherFingerprint = "";
    let bastionFingerprint = "";
    let hv1: string;
    let agent: TestAgent | undefined;
    const savedAuthSock = process.env.SSH_AUTH_SOCK;

    /** One read of `domain` through the provider over `connection`: one SSH exec on the target. */
    const readWith = (connection: ConnectionInputs, domain: string) =>
        resources.read("probe", { connection, domain } as DomainResourcesOutputs);

    before(function () {
        this.timeout(600_000);
        rig = rigUp();
        ns = loadNetnsEnv(rig);
        hv1 = ns.hypervisors[0];
        dir = mkdtempSync(join(tmpdir(), "pll-jump-"));
        const other = join(dir, "other_host_key");
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other], { stdio: "ignore" });
        otherFingerprint = execFileSync("ssh-keygen", ["-lf", `${other}.pub`], { encoding: "utf8" }).split(/\s+/)[1];
        bastionFingerprint = hostFingerprint(ns, ns.bastion);
        delete process.env.SSH_AUTH_SOCK;
    });

    afterEach(() => {
        // Every case starts from no pooled connection, so handshakes and failures are its own.
        closeAllHosts();
        agent?.stop();
        agent = undefined;
        if (savedAuthSock === undefined) delete process.env.SSH_AUTH_SOCK;
        else process.env.SSH_AUTH_SOCK = savedAuthSock;
        delete process.env.SSH_AUTH_SOCK;
    });

    after(() => {
        if (savedAuthSock !== undefined) process.env.SSH_AUTH_SOCK = savedAuthSock;
        rmSync(dir, { recursive: true, force: true });
    });

    describe("reachability", () => {
        it("the test's namespace has an unreachable route for the namespace subnet, and a hypervisor cannot be reached directly", async () => {
            const routes = execFileSync("ip", ["route", "show", "type", "unreachable"], { encoding: "utf8" });
            assert.ok(routes.includes(ns.subnet), `no 'unreachable ${ns.subnet}' route in the test's namespace: ${routes}`);
            const before = acceptedLogins(ns, hv1);
            await rejectsWith(readWith(viaBastion(rig, ns, hv1, { proxyJump: undefined }), ns.guests[0]), HostUnreachableError,
                [/cannot reach the SSH server: EHOSTUNREACH/, new RegExp(`root@${hv1.replace(/\./g, "\\.")}:22`)]);
            assert.equal(acceptedLogins(ns, hv1), before);
        });
    });

    describe("jump hosts", () => {
        it("one hop (OpenSSH string): the read reaches the guest of pll-hv1; one login at the bastion, one at the hypervisor", async () => {
            const [b0, h0] = [acceptedLogins(ns, ns.bastion), acceptedLogins(ns, hv1)];
            const connection = viaBastion(rig, ns, hv1);
            for (let i = 0; i < 3; i++) {
                const read = await readWith(connection, ns.guests[0]);
                assert.equal(read.props?.state, domState(ns.guests[0]));
            }
            assert.deepEqual([acceptedLogins(ns, ns.bastion) - b0, acceptedLogins(ns, hv1) - h0], [1, 1], "the chain is opened once and reused");
        });

        it("two hops: bastion, then pll-hv1, then pll-deep (which only pll-hv1 reaches)", async () => {
            const [b0, h0, d0] = [acceptedLogins(ns, ns.bastion), acceptedLogins(ns, hv1), acceptedLogins(ns, ns.deep)];
            const read = await readWith(viaBastion(rig, ns, ns.deep, { proxyJump: `root@${ns.bastion},root@${hv1}:22` }), ns.guests[0]);
            assert.equal(read.props?.state, "running");
            assert.deepEqual([acceptedLogins(ns, ns.bastion) - b0, acceptedLogins(ns, hv1) - h0, acceptedLogins(ns, ns.deep) - d0], [1, 1, 1]);
        });

        it("hops as objects with pinned host keys (no known_hosts at all)", async () => {
            const empty = join(dir, "known_hosts_empty");
            writeFileSync(empty, "");
            const read = await readWith(viaBastion(rig, ns, hv1, {
                knownHostsPath: empty, hostKey: hostFingerprint(ns, hv1),
                proxyJump: [{ host: ns.bastion, user: "root", hostKey: bastionFingerprint }],
            }), ns.guests[0]);
            assert.equal(read.props?.state, "running");
        });

        it("four hypervisors behind one bastion in parallel: one bastion login, one per hypervisor", async () => {
            const before = [ns.bastion, ...ns.hypervisors].map((a) => acceptedLogins(ns, a));
            const reads = await Promise.all(ns.hypervisors.flatMap((address, i) =>
                // Three reads per host at once: they share the host's one connection.
                [0, 1, 2].map(() => readWith(viaBastion(rig, ns, address), ns.guests[i]))));
            for (const read of reads) assert.equal(read.props?.state, "running");
            const after = [ns.bastion, ...ns.hypervisors].map((a) => acceptedLogins(ns, a));
            assert.deepEqual(after.map((n, i) => n - before[i]), [1, 1, 1, 1, 1]);
        });
    });

    it("twelve targets behind one bastion: each holds a forwarded channel there, so a second bastion connection opens past 8", async () => {
        const rigKey = readFileSync(rig.PLL_SSH_KEY, "utf8");
        const agentKey = readFileSync(ns.agentKey, "utf8");
        // The same hop settings for all (so they may share the bastion); three distinct targets per hypervisor.
        const proxyJump = [{ host: ns.bastion, user: "root", privateKey: rigKey }];
        const variants: Array<Partial<ConnectionInputs>> = [{ privateKey: rigKey }, { privateKey: agentKey }, { privateKey: rigKey, connectTimeout: 20 }];
        const before = [ns.bastion, ...ns.hypervisors].map((a) => acceptedLogins(ns, a));
        const reads = await Promise.all(ns.hypervisors.flatMap((address, i) =>
            variants.map((variant) => readWith(viaBastion(rig, ns, address, { proxyJump, ...variant }), ns.guests[i]))));
        for (const read of reads) assert.equal(read.props?.state, "running");
        const after = [ns.bastion, ...ns.hypervisors].map((a) => acceptedLogins(ns, a));
        assert.deepEqual(after.map((n, i) => n - before[i]), [2, 3, 3, 3, 3], "bastion: ceil(12 / 8) connections; each target: its own");
    });

    describe("host keys at every hop", () => {
        it("a wrong pinned key at hop 1 is refused naming the jump host, its position and the fingerprint seen; the target is never dialled", async () => {
            const h0 = acceptedLogins(ns, hv1);
            const error = await rejectsWith(readWith(viaBastion(rig, ns, hv1, {
                proxyJump: [{ host: ns.bastion, user: "root", hostKey: otherFingerprint }],
            }), ns.guests[0]), HostKeyError, [
                new RegExp(`at jump host 1 of 1 \\(root@${ns.bastion.replace(/\./g, "\\.")}:22\\)`),
                /does not match the pinned hostKey of jump host 1 in connection.proxyJump/,
            ]);
            assert.ok(error.message.includes(bastionFingerprint), `names the key seen: ${error.message}`);
            assert.ok(!error.message.includes(hostFingerprint(ns, hv1)));
            assert.equal(acceptedLogins(ns, hv1), h0);
        });

        it("an unknown key at hop 1 (its known_hosts lacks it) is refused naming the hop and the file", async () => {
            const empty = join(dir, "known_hosts_empty_hop");
            writeFileSync(empty, "");
            const error = await rejectsWith(readWith(viaBastion(rig, ns, hv1, {
                proxyJump: [{ host: ns.bastion, user: "root", knownHostsPath: empty }],
            }), ns.guests[0]), HostKeyError, [/at jump host 1 of 1/, /is not in/]);
            assert.ok(error.message.includes(bastionFingerprint) && error.message.includes(empty), error.message);
        });

        it("a wrong key at hop 2 of 2 names hop 2", async () => {
            const error = await rejectsWith(readWith(viaBastion(rig, ns, ns.deep, {
                proxyJump: [{ host: ns.bastion, user: "root" }, { host: hv1, user: "root", hostKey: otherFingerprint }],
            }), ns.guests[0]), HostKeyError, [new RegExp(`at jump host 2 of 2 \\(root@${hv1.replace(/\./g, "\\.")}:22\\)`)]);
            assert.ok(error.message.includes(hostFingerprint(ns, hv1)), error.message);
        });

        it("a wrong key at the target behind a hop is refused naming the target, the way and the fingerprint seen", async () => {
            const error = await rejectsWith(readWith(viaBastion(rig, ns, hv1, { hostKey: otherFingerprint }), ns.guests[0]), HostKeyError, [
                /does not match the pinned connection.hostKey/,
                new RegExp(`host root@${hv1.replace(/\./g, "\\.")}:22 via root@${ns.bastion.replace(/\./g, "\\.")}:22`),
            ]);
            assert.ok(error.message.includes(hostFingerprint(ns, hv1)), error.message);
            assert.ok(!/jump host/.test(error.message.split("\n")[0]), "the target's own key is not blamed on a hop");
        });
    });

    describe("ssh-agent", () => {
        it("a key held only by an agent the test started authenticates directly (the bastion) and through it, with no key in the connection", async () => {
            agent = await TestAgent.start(join(dir, "agent.sock"));
            agent.add(ns.agentKey);
            const direct = { ...viaBastion(rig, ns, ns.bastion, { proxyJump: undefined, agent: agent.socket }) };
            delete direct.privateKey;
            assert.equal((await readWith(direct, ns.guests[0])).props?.state, "running");
            // Through the bastion, from SSH_AUTH_SOCK (the default when no key or password is given).
            process.env.SSH_AUTH_SOCK = agent.socket;
            const hop = viaBastion(rig, ns, ns.hypervisors[1]);
            delete hop.privateKey;
            assert.equal((await readWith(hop, ns.guests[1])).props?.state, "running");
        });

        it("an agent that holds no keys: an error that says so and how to fix it (ssh-add)", async () => {
            agent = await TestAgent.start(join(dir, "empty-agent.sock"));
            assert.equal(agent.keyCount(), 0);
            const connection = viaBastion(rig, ns, hv1, { agent: agent.socket });
            delete connection.privateKey;
            await rejectsWith(readWith(connection, ns.guests[0]), AuthenticationError, [
                new RegExp(`the ssh-agent at ${agent.socket} holds no keys`), /Fix: load a key with `ssh-add/,
            ]);
        });

        it("a missing agent socket: an error that names the socket and how to fix it", async () => {
            const missing = join(dir, "no-such-agent.sock");
            process.env.SSH_AUTH_SOCK = missing;
            const connection = viaBastion(rig, ns, hv1);
            delete connection.privateKey;
            await rejectsWith(readWith(connection, ns.guests[0]), AuthenticationError, [
                new RegExp(`the ssh-agent socket ${missing} does not exist`), /ssh-agent/, /ssh-add/,
            ]);
        });
    });

    describe("SSH config", () => {
        let configPath = "";

        before(() => {
            configPath = join(dir, "ssh_config");
            writeFileSync(configPath, [
                "Host hv2",
                `  HostName ${ns.hypervisors[1]}`,
                "  User root",
                "  Port 22",
                `  IdentityFile ${rig.PLL_SSH_KEY}`,
                "  ProxyJump jumpbox",
                "Host wronguser",
                `  HostName ${ns.hypervisors[1]}`,
                "  User pll-no-such-user",
                `  IdentityFile ${rig.PLL_SSH_KEY}`,
                "  ProxyJump jumpbox",
                "Host jumpbox",
                `  HostName ${ns.bastion}`,
                "  User root",
                `  IdentityFile ${rig.PLL_SSH_KEY}`,
                "Host *",
                `  UserKnownHostsFile ${ns.knownHosts}`,
                "",
            ].join("\n"));
        });

        it("an alias with HostName, Port, User, IdentityFile and ProxyJump reaches the guest (no key, user or jump in the connection)", async () => {
            const read = await readWith({ host: "hv2", sshConfig: configPath }, ns.guests[1]);
            assert.equal(read.props?.state, "running");
        });

        it("explicit fields win: user over the config's User, and port over its Port (refused at that port, named)", async () => {
            const read = await readWith({ host: "wronguser", user: "root", sshConfig: configPath }, ns.guests[1]);
            assert.equal(read.props?.state, "running");
            await rejectsWith(readWith({ host: "wronguser", sshConfig: configPath }, ns.guests[1]), AuthenticationError, [/user 'pll-no-such-user'/]);
            await rejectsWith(readWith({ host: "hv2", port: 2200, sshConfig: configPath }, ns.guests[1]), HostUnreachableError, [
                new RegExp(`root@${ns.hypervisors[1].replace(/\./g, "\\.")}:2200 \\(hv2\\)`), /from jump host 1/, /Connect failed|refused/i,
            ]);
        });

        it("an unknown alias errors naming the host and the config file read (run in a namespace with no network, so no lookup leaves)", () => {
            const script = join(dir, "unknown-alias.js");
            writeFileSync(script, `
const { providers, closeAllHosts } = require(${JSON.stringify(join(REPO_ROOT, "dist", "provider", "index.js"))});
providers.domainResources.read("probe", { connection: { host: "pll-no-such-alias", user: "root",
    privateKey: require("fs").readFileSync(${JSON.stringify(rig.PLL_SSH_KEY)}, "utf8"),
    sshConfig: ${JSON.stringify(configPath)} }, domain: "x" })
  .then(() => console.log(JSON.stringify({ ok: true })), (e) => console.log(JSON.stringify({ name: e.name, message: e.message })))
  .finally(closeAllHosts);
`);
            const result = spawnSync("ip", ["netns", "exec", ns.isolatedNamespace, process.execPath, script], { encoding: "utf8", timeout: 60_000 });
            assert.equal(result.status, 0, result.stderr);
            const outcome = JSON.parse(result.stdout.trim().split("\n").pop() ?? "{}") as { name?: string; message?: string };
            assert.equal(outcome.name, "HostUnreachableError", result.stdout);
            assert.match(outcome.message ?? "", /cannot resolve 'pll-no-such-alias'/);
            assert.ok(outcome.message?.includes(`${configPath} gives 'pll-no-such-alias' no HostName`), outcome.message);
            assert.match(outcome.message ?? "", /Fix: add `Host pll-no-such-alias` with a HostName/);
        });
    });

    describe("a bastion that is down or restarts", () => {
        const guest = "pll-net3";
        let image = "";

        before(() => {
            image = createImage(rig, "jump-bastion");
        });
        after(() => {
            namespaceSshd("start", "pll-bastion");
            rmSync(image, { force: true });
        });

        it("bastion down: a clear error naming jump host 1, and nothing changed on the guest", async () => {
            namespaceSshd("stop", "pll-bastion");
            try {
                await rejectsWith(disks.create({ connection: viaBastion(rig, ns, ns.hypervisors[2]), domain: guest, source: image }), HostUnreachableError, [
                    new RegExp(`at jump host 1 of 1 \\(root@${ns.bastion.replace(/\./g, "\\.")}:22\\)`), /ECONNREFUSED/,
                    /Fix: check the jump host's address and port \(connection.proxyJump, or the SSH config's ProxyJump\), and that sshd runs there; nothing was changed/,
                ]);
                assert.deepEqual(diskCount(guest, image), { live: 0, config: 0 });
            } finally {
                namespaceSshd("start", "pll-bastion");
            }
        });

        it("bastion sshd restarted between operations (its sessions end): the chain reconnects, the disk is attached once", async () => {
            const connection = viaBastion(rig, ns, ns.hypervisors[2]);
            const inputs: AttachedDiskInputs = { connection, domain: guest, source: image };
            const b0 = acceptedLogins(ns, ns.bastion);
            const created = await disks.create(inputs);
            assert.deepEqual(diskCount(guest, image), { live: 1, config: 1 });
            namespaceSshd("stop", "pll-bastion");
            namespaceSshd("start", "pll-bastion");
            const read = await disks.read(created.id, created.outs);
            assert.equal(read.props?.attachedLive, true);
            const diff = await disks.diff(created.id, read.props as AttachedDiskOutputs, await disks.check(inputs));
            assert.equal(diff.changes, false);
            assert.deepEqual(diskCount(guest, image), { live: 1, config: 1 }, "attached once");
            assert.equal(acceptedLogins(ns, ns.bastion) - b0, 2, "one login before the restart, one after");
            await disks.delete(created.id, created.outs);
            assert.deepEqual(diskCount(guest, image), { live: 0, config: 0 });
        });
    });

    describe("a jump host given no credentials of its own, the hypervisor with a password", () => {
        let bastion: RecordingBastion;
        let port = 0;

        before(async () => {
            bastion = new RecordingBastion(readFileSync(`${rig.PLL_SSH_KEY}.pub`, "utf8"));
            port = await bastion.listen(BASTION_PORT);
        });
        after(() => bastion.close());

        /** The rig's sshd (root, its key) reached through our recording bastion, which pins no key of its own. */
        const throughRecorder = (overrides: Partial<ConnectionInputs>): ConnectionInputs => ({
            ...rigConnection(rig, { sshConfig: false }),
            proxyJump: [{ host: "127.0.0.1", port, user: "jump", hostKey: bastion.fingerprint }],
            ...overrides,
        });

        it("key and password for the hypervisor: the bastion is offered the key only, never the password; the read works", async () => {
            const before = bastion.attempts.length;
            const read = await readWith(throughRecorder({ password: HV_PASSWORD }), NOOS);
            assert.equal(read.props?.state, domState(NOOS));
            const attempts = bastion.attempts.slice(before);
            assert.deepEqual(attempts.filter((a) => a.passwordArrived), [], `the bastion saw: ${JSON.stringify(attempts)}`);
            assert.ok(attempts.some((a) => a.method === "publickey" && a.user === "jump"), JSON.stringify(attempts));
        });

        it("only a password for the hypervisor: refused before the bastion is offered anything, naming jump host 1 and how to give it a key", async () => {
            const connection = throughRecorder({ password: HV_PASSWORD });
            delete connection.privateKey;
            const before = bastion.attempts.length;
            const error = await rejectsWith(readWith(connection, NOOS), AuthenticationError, [
                new RegExp(`at jump host 1 of 1 \\(jump@127\\.0\\.0\\.1:${port}\\)`), /no SSH credentials for jump host 1/,
                /the hypervisor's password is never offered to a jump host/, /Fix: give jump host 1 its own key/,
            ]);
            assert.ok(!error.message.includes(HV_PASSWORD));
            assert.deepEqual(bastion.attempts.slice(before), [], "nothing reached the bastion");
        });

        it("straight to a server (this one as the target): the key before the password, and a password only where the server says it takes one", async () => {
            // A key this server does not accept, so every method is tried.
            const direct: ConnectionInputs = { host: "127.0.0.1", port, user: "root", hostKey: bastion.fingerprint, sshConfig: false,
                privateKey: readFileSync(ns.agentKey, "utf8"), password: HV_PASSWORD };
            try {
                bastion.methods = ["publickey"];
                let before = bastion.attempts.length;
                await rejectsWith(readWith(direct, NOOS), AuthenticationError, [/SSH server refused the credentials for user 'root'/]);
                assert.deepEqual(bastion.attempts.slice(before).map((a) => a.method), ["none", "publickey"], "no password to a server that takes none");
                bastion.methods = ["publickey", "password"];
                closeAllHosts();
                before = bastion.attempts.length;
                await rejectsWith(readWith(direct, NOOS), AuthenticationError);
                assert.deepEqual(bastion.attempts.slice(before).map((a) => a.method), ["none", "publickey", "password"], "the key first, as OpenSSH");
            } finally {
                bastion.methods = ["publickey", "password"];
            }
        });

        it("the namespace bastion, given no key of its own, logs in with the hypervisor's key (a password is given too)", async () => {
            const b0 = acceptedLogins(ns, ns.bastion);
            const read = await readWith(viaBastion(rig, ns, hv1, { password: HV_PASSWORD }), ns.guests[0]);
            assert.equal(read.props?.state, domState(ns.guests[0]));
            assert.equal(acceptedLogins(ns, ns.bastion) - b0, 1, "one publickey login at the bastion");
        });
    });

    describe("hostile input through a hop", () => {
        const canary = new Canary();
        afterEach(function () {
            canary.assertAbsent(this.currentTest?.title ?? "test");
        });
        after(() => canary.cleanup());

        it("hostile domain names reach virsh literally through the bastion: 'not found', nothing runs", async () => {
            const connection = viaBastion(rig, ns, hv1);
            for (const [label, name] of Object.entries(canary.payloads())) {
                const error = await rejectsWith(resources.create({ connection, domain: name, memory: "200MiB" }), VirshError, [/failed to get domain/]);
                assert.ok(error.message.includes(`domain '${name}'`), `${label}: ${error.message}`);
            }
        });

        it("hostile proxyJump and sshConfig values are refused by check() before anything is dialled", async () => {
            const b0 = acceptedLogins(ns, ns.bastion);
            for (const proxyJump of [`root@${ns.bastion};touch ${canary.token}`, `$(touch ${canary.token})@${ns.bastion}`,
                `root@${ns.bastion} -oProxyCommand=touch`, `root@${ns.bastion}:22\n`]) {
                await checkRefusal(resources, { connection: viaBastion(rig, ns, hv1, { proxyJump }), domain: ns.guests[0] },
                    "connection.proxyJump", [/hop 1|line break/]);
            }
            await checkRefusal(resources, { connection: viaBastion(rig, ns, hv1, { proxyJump: [{ host: `b\n${canary.token}` }] }), domain: ns.guests[0] },
                "connection.proxyJump", [/line break/]);
            await checkRefusal(resources, { connection: viaBastion(rig, ns, hv1, { sshConfig: "" }), domain: ns.guests[0] },
                "connection.sshConfig", [/file path or false/]);
            assert.equal(acceptedLogins(ns, ns.bastion), b0);
        });

        it("no secret in the error of a refused hop key", async () => {
            const key = readFileSync(rig.PLL_SSH_KEY, "utf8");
            const error = await rejectsWith(readWith(viaBastion(rig, ns, hv1, {
                proxyJump: [{ host: ns.bastion, user: "root", privateKey: key, hostKey: otherFingerprint }],
            }), ns.guests[0]), HostKeyError);
            const body = key.split("\n").filter((l) => l && !l.startsWith("-----")).join("");
            for (let i = 0; i + 12 <= body.length; i += 6) assert.ok(!error.message.includes(body.slice(i, i + 12)), "key material in the message");
        });
    });
});
