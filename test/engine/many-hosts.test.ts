/**
 * Issue 10 through the real engine: one stack with disks on 4 "hypervisors" (the rig's namespace
 * hosts pll-hv1..4, guests pll-net1..4) behind one bastion, named by aliases of an SSH config,
 * authenticated by an ssh-agent the test started: no key, user or address in the stack at all.
 * up, preview --expect-no-changes, refresh, destroy, each checked with the test's own virsh;
 * SSH logins counted from the server side (each sshd's "Accepted publickey" lines, LogLevel VERBOSE).
 */
import assert from "node:assert/strict";
import { execFileSync } from "child_process";
import { mkdtempSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { acceptedLogins, loadNetnsEnv, NetnsEnv, TestAgent } from "../rig/netns-env";
import { createImage, diskCount, removeFiles, RigEnv, rigUp } from "../rig/rig-env";
import { Consumer, installConsumer, openTestStack, RunResult, TestStack } from "./engine-fixture";

const DISKS_PER_HOST = 2;

describe("engine: devices on 4 hosts behind one bastion, SSH config aliases and an ssh-agent (issue 10)", function () {
    this.timeout(600_000);
    let rig: RigEnv;
    let ns: NetnsEnv;
    let consumer: Consumer;
    let stack: TestStack | undefined;
    let agent: TestAgent | undefined;
    let dir = "";
    let configPath = "";
    const images: string[][] = [];
    const savedAuthSock = process.env.SSH_AUTH_SOCK;

    /** Logins per server during `run`: [bastion, hv1..hv4]. */
    async function loginsDuring(run: () => Promise<RunResult>): Promise<{ result: RunResult; logins: number[] }> {
        const servers = [ns.bastion, ...ns.hypervisors];
        const before = servers.map((s) => acceptedLogins(ns, s));
        const result = await run();
        const logins = servers.map((s, i) => acceptedLogins(ns, s) - before[i]);
        console.log(`      [handshakes] ${result.kind}: bastion ${logins[0]}, hv1..hv4 ${logins.slice(1).join(" ")}`);
        return { result, logins };
    }

    function assertDisks(expected: { live: number; config: number }, when: string): void {
        ns.guests.forEach((guest, h) => images[h].forEach((image) =>
            assert.deepEqual(diskCount(guest, image), expected, `${when}: ${image} on ${guest}`)));
    }

    before(async function () {
        rig = rigUp();
        ns = loadNetnsEnv(rig);
        dir = mkdtempSync(join(tmpdir(), "pll-many-hosts-"));
        configPath = join(dir, "ssh_config");
        writeFileSync(configPath, [
            "Host bastion",
            `  HostName ${ns.bastion}`,
            // Two aliases per hypervisor: renaming one to the other must not replace anything.
            ...ns.hypervisors.flatMap((address, i) => [`Host hv${i + 1} kvm${i + 1}`, `  HostName ${address}`, "  ProxyJump bastion"]),
            "Host *",
            "  User root",
            `  UserKnownHostsFile ${ns.knownHosts}`,
            // Not followed: the provider says so in the engine's log and still checks every host key.
            "  StrictHostKeyChecking no",
            "",
        ].join("\n"));
        agent = await TestAgent.start(join(dir, "agent.sock"));
        agent.add(ns.agentKey);
        // The CLI, and the provider process it starts, inherit this.
        process.env.SSH_AUTH_SOCK = agent.socket;
        ns.guests.forEach((_g, h) => images.push(Array.from({ length: DISKS_PER_HOST }, (_x, d) => createImage(rig, `many-hv${h + 1}-${d}`, "raw", "4M"))));
        consumer = await installConsumer();
    });

    after(async function () {
        await stack?.remove();
        agent?.stop();
        if (savedAuthSock === undefined) delete process.env.SSH_AUTH_SOCK;
        else process.env.SSH_AUTH_SOCK = savedAuthSock;
        removeFiles(images.flat());
        rmSync(dir, { recursive: true, force: true });
    });

    it("up, preview --expect-no-changes, refresh, an alias renamed (update, not replace) and destroy: one login per host per run, plus one at the bastion", async () => {
        const program = (alias: string) => async () => {
            const sdk = consumer.load();
            ns.guests.forEach((domain, h) => {
                // Only an alias and the config file: user, address, jump host and credentials come from the config and the agent.
                const connection = { host: `${alias}${h + 1}`, sshConfig: configPath };
                images[h].forEach((source, d) => new sdk.AttachedDisk(`hv${h + 1}-disk${d}`, { connection, domain, source }));
            });
        };
        stack = await openTestStack(consumer, "pll-e2e-many-hosts", program("hv"));

        const up = await loginsDuring(() => stack!.up());
        assert.deepEqual(up.result.failed, []);
        const ours = Object.entries(up.result.ops).filter(([name]) => up.result.types[name]?.includes("libvirt-live"));
        assert.deepEqual(ours.map(([, op]) => op), Array(ns.guests.length * DISKS_PER_HOST).fill("create"));
        assert.deepEqual(up.logins, [1, 1, 1, 1, 1]);
        assertDisks({ live: 1, config: 1 }, "after up");
        assert.match(up.result.log, /StrictHostKeyChecking no for 'hv\d': not followed/, "the config's weakening is reported in the engine's log");

        const preview = await loginsDuring(() => stack!.preview({ expectNoChanges: true }));
        assert.deepEqual(preview.result.failed, []);
        // The diff needs no host: a preview with nothing to change logs in nowhere.
        assert.deepEqual(preview.logins, [0, 0, 0, 0, 0]);

        const refresh = await loginsDuring(() => stack!.refresh());
        assert.deepEqual(refresh.result.failed, []);
        assert.deepEqual(Object.entries(refresh.result.ops).filter(([name, op]) => name.includes("disk") && op !== "same"), [], "refresh finds what up left");
        assert.deepEqual(refresh.logins, [1, 1, 1, 1, 1]);
        assertDisks({ live: 1, config: 1 }, "after refresh");

        const state = execFileSync("pulumi", ["stack", "export", "--show-secrets", "--stack", stack.name],
            { cwd: join(stack.dir, "work"), env: { ...process.env, ...stack.env }, encoding: "utf8" });
        // Every stored connection, decrypted, is just the alias and the config path.
        const connections = [...state.matchAll(/"plaintext": "(\{\\"host\\".*?)"\n/g)].map((m) => JSON.parse(JSON.parse(`"${m[1]}"`)) as Record<string, unknown>);
        assert.ok(connections.length >= ns.guests.length * DISKS_PER_HOST, `found ${connections.length} stored connections`);
        for (const connection of connections) assert.deepEqual(Object.keys(connection).sort(), ["host", "sshConfig"]);
        assert.ok(!state.includes("PRIVATE KEY"), "no key anywhere in the stack");

        // Another alias for the same host, port and URI: stored only (an update), never a replacement.
        stack.setProgram(program("kvm"));
        const renamed = await stack.preview();
        const renamedOps = Object.entries(renamed.ops).filter(([name]) => renamed.types[name]?.includes("libvirt-live")).map(([, op]) => op);
        assert.deepEqual(renamedOps, Array(ns.guests.length * DISKS_PER_HOST).fill("update"));
        const renamedUp = await stack.up();
        assert.deepEqual(renamedUp.failed, []);
        assertDisks({ live: 1, config: 1 }, "after the alias rename");

        const destroy = await loginsDuring(() => stack!.destroy());
        assert.deepEqual(destroy.result.failed, []);
        assert.deepEqual(destroy.logins, [1, 1, 1, 1, 1]);
        assertDisks({ live: 0, config: 0 }, "after destroy");
    });
});
