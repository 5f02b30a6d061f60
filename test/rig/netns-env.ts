/**
 * The rig's namespace hosts (rig/netns-up.sh, netns.env) for the jump-host suites: addresses,
 * host-key fingerprints, connections through the bastion, an ssh-agent the test starts, and the
 * sshd logs that count handshakes from the server side.
 */
import assert from "node:assert/strict";
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import { existsSync, readFileSync } from "fs";
import { join } from "path";
import type { ConnectionInputs } from "../../provider/contract";
import { REPO_ROOT, RigEnv, sleep } from "./rig-env";

export interface NetnsEnv {
    dir: string;
    bastion: string;
    /** pll-hv1..4 addresses, in order; pll-hvN manages guest pll-netN. */
    hypervisors: string[];
    guests: string[];
    /** pll-deep, reachable only from pll-hv1. */
    deep: string;
    isolatedNamespace: string;
    subnet: string;
    knownHosts: string;
    /** A key authorized on the namespace hosts only, for the agent tests. */
    agentKey: string;
}

export function loadNetnsEnv(rig: RigEnv): NetnsEnv {
    const path = join(rig.PLL_RIG_DIR, "netns.env");
    const values: Record<string, string> = {};
    for (const line of readFileSync(path, "utf8").split("\n")) {
        const match = /^export\s+([A-Z0-9_]+)="?([^"]*)"?$/.exec(line.trim());
        if (match) values[match[1]] = match[2];
    }
    for (const key of ["PLL_NS_DIR", "PLL_NS_BASTION", "PLL_NS_HV_ADDRS", "PLL_NS_DEEP", "PLL_NS_KNOWN_HOSTS", "PLL_NS_AGENT_KEY", "PLL_NS_GUESTS"]) {
        assert.ok(values[key], `${path} lacks ${key}`);
    }
    return {
        dir: values.PLL_NS_DIR,
        bastion: values.PLL_NS_BASTION,
        hypervisors: values.PLL_NS_HV_ADDRS.split(" "),
        guests: values.PLL_NS_GUESTS.split(" "),
        deep: values.PLL_NS_DEEP,
        isolatedNamespace: values.PLL_NS_ISOLATED,
        subnet: values.PLL_NS_SUBNET,
        knownHosts: values.PLL_NS_KNOWN_HOSTS,
        agentKey: values.PLL_NS_AGENT_KEY,
    };
}

/** The namespace (pll-bastion, pll-hv1…) whose sshd listens on `address`. */
export function namespaceOf(ns: NetnsEnv, address: string): string {
    if (address === ns.bastion) return "pll-bastion";
    if (address === ns.deep) return "pll-deep";
    const index = ns.hypervisors.indexOf(address);
    assert.ok(index >= 0, `${address} is no namespace host`);
    return `pll-hv${index + 1}`;
}

/** `SHA256:…` of the host key the namespace host serves. */
export function hostFingerprint(ns: NetnsEnv, address: string): string {
    const pub = join(ns.dir, namespaceOf(ns, address), "ssh_host_ed25519_key.pub");
    return execFileSync("ssh-keygen", ["-lf", pub], { encoding: "utf8" }).split(/\s+/)[1];
}

/** Logins the host's sshd accepted so far ("Accepted publickey" lines, LogLevel VERBOSE). */
export function acceptedLogins(ns: NetnsEnv, address: string): number {
    const log = join(ns.dir, namespaceOf(ns, address), "sshd.log");
    if (!existsSync(log)) return 0;
    return readFileSync(log, "utf8").split("\n").filter((l) => l.includes("Accepted publickey for ")).length;
}

/** Root with the rig key to `address`, through the bastion, host keys from the namespace known_hosts. */
export function viaBastion(rig: RigEnv, ns: NetnsEnv, address: string, overrides: Partial<ConnectionInputs> = {}): ConnectionInputs {
    return {
        host: address,
        user: "root",
        privateKey: readFileSync(rig.PLL_SSH_KEY, "utf8"),
        knownHostsPath: ns.knownHosts,
        proxyJump: `root@${ns.bastion}`,
        sshConfig: false,
        ...overrides,
    };
}

/** rig/netns-sshd.sh stop|start NS: a jump host that is down, or comes back. */
export function namespaceSshd(action: "stop" | "start", namespace: string): void {
    const result = spawnSync("bash", [join(REPO_ROOT, "rig", "netns-sshd.sh"), action, namespace], { encoding: "utf8", timeout: 120_000 });
    assert.equal(result.status, 0, `rig/netns-sshd.sh ${action} ${namespace}: ${result.stderr}`);
}

/** An ssh-agent this test started (in the foreground, so it ends with the test), on its own socket. */
export class TestAgent {
    private constructor(readonly socket: string, private readonly child: ChildProcess) {}

    static async start(socket: string): Promise<TestAgent> {
        const child = spawn("ssh-agent", ["-D", "-a", socket], { stdio: "ignore" });
        for (let i = 0; i < 100 && !existsSync(socket); i++) await sleep(50);
        assert.ok(existsSync(socket), `ssh-agent made no socket at ${socket}`);
        return new TestAgent(socket, child);
    }

    add(keyPath: string): void {
        execFileSync("ssh-add", [keyPath], { env: { ...process.env, SSH_AUTH_SOCK: this.socket }, stdio: "ignore" });
    }

    /** `ssh-add -l` exit 1 means "no identities". */
    keyCount(): number {
        const result = spawnSync("ssh-add", ["-l"], { env: { ...process.env, SSH_AUTH_SOCK: this.socket }, encoding: "utf8" });
        return result.status === 0 ? result.stdout.trim().split("\n").length : 0;
    }

    stop(): void {
        if (this.child.exitCode === null) this.child.kill();
    }
}
