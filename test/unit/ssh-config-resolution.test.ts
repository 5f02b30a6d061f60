/**
 * Config resolution with an in-memory file system: what the target and each jump host resolve to,
 * what wins, and what is refused or warned about. No host is contacted.
 */
import assert from "node:assert/strict";
import { execFileSync } from "child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import type { ConnectionInputs } from "../../provider/contract";
import { AuthenticationError, InputError } from "../../provider/errors";
import { classifyChanges, DOMAIN_RESOURCES_RULES } from "../../provider/rules";
import { assertHasCredentials, HONOURED_KEYWORDS, ResolutionEnv, resolveConnection, resolvedHostAndPort } from "../../provider/transport/ssh-config-resolution";

const HOME = "/home/op";
const CONFIG = `${HOME}/.ssh/config`;

describe("ssh-config-resolution", () => {
    let keyText = "";
    let encryptedKeyText = "";
    let dir = "";

    before(() => {
        dir = mkdtempSync(join(tmpdir(), "pll-resolve-"));
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "k")], { stdio: "ignore" });
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "pass phrase", "-f", join(dir, "enc")], { stdio: "ignore" });
        keyText = readFileSync(join(dir, "k"), "utf8");
        encryptedKeyText = readFileSync(join(dir, "enc"), "utf8");
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    function env(files: Record<string, string>, authSock?: string): ResolutionEnv {
        return { homeDir: HOME, localUser: "op", authSock, readText: (path) => files[path] };
    }

    const CONFIG_TEXT = `
Host hv1 hv1-again
  HostName 10.0.1.2
  User root
  Port 2201
  IdentityFile ~/.ssh/id_%h
  ProxyJump bastion
  UserKnownHostsFile ~/.ssh/known_hosts_%n
  ConnectTimeout 7
Host bastion
  HostName 10.0.0.2
  User jump
  IdentityFile ~/.ssh/bastion_key
Host lax
  HostName 10.0.0.9
  StrictHostKeyChecking no
Host agenthost
  HostName 10.0.0.10
  IdentityAgent ~/agent.sock
Host *
  User fallback
`;

    it("an alias: HostName, User, Port, IdentityFile (~ and %h), UserKnownHostsFile (%n), ConnectTimeout, ProxyJump", () => {
        const target = resolveConnection({ host: "hv1" }, env({ [CONFIG]: CONFIG_TEXT, [`${HOME}/.ssh/id_10.0.1.2`]: keyText, [`${HOME}/.ssh/bastion_key`]: keyText }));
        assert.equal(target.host, "10.0.1.2");
        assert.equal(target.name, "hv1");
        assert.equal(target.user, "root");
        assert.equal(target.port, 2201);
        assert.equal(target.credentials.privateKey, keyText);
        assert.equal(target.hostKeys.knownHostsPath, `${HOME}/.ssh/known_hosts_hv1`);
        assert.equal(target.connectTimeout, 7);
        assert.equal(target.configPath, CONFIG);
        assert.equal(target.hops.length, 1);
        const [hop] = target.hops;
        assert.deepEqual([hop.name, hop.host, hop.port, hop.user], ["bastion", "10.0.0.2", 22, "jump"]);
        assert.equal(hop.credentials.privateKey, keyText);
        assert.equal(hop.hostKeys.knownHostsPath, `${HOME}/.ssh/known_hosts`);
    });

    it("explicit connection fields win over the file", () => {
        const target = resolveConnection({ host: "hv1", user: "admin", port: 22, connectTimeout: 30, knownHostsPath: "/etc/kh",
            privateKey: "explicit", proxyJump: "ops@other:2022" }, env({ [CONFIG]: CONFIG_TEXT }));
        assert.deepEqual([target.host, target.user, target.port, target.connectTimeout, target.hostKeys.knownHostsPath],
            ["10.0.1.2", "admin", 22, 30, "/etc/kh"]);
        assert.equal(target.credentials.privateKey, "explicit");
        assert.deepEqual(target.hops.map((h) => [h.host, h.port, h.user]), [["other", 2022, "ops"]]);
        // A hop without credentials of its own uses the target's.
        assert.equal(target.hops[0].credentials.privateKey, "explicit");
    });

    it("first match wins (Host * comes last); a host no block names keeps its name", () => {
        const plain = resolveConnection({ host: "10.9.9.9" }, env({ [CONFIG]: CONFIG_TEXT }, "/run/agent"));
        assert.deepEqual([plain.host, plain.user, plain.port], ["10.9.9.9", "fallback", 22]);
        assert.deepEqual(plain.hops, []);
    });

    it("the agent: SSH_AUTH_SOCK by default when no key or password is given; connection.agent wins; IdentityAgent is read", () => {
        const byDefault = resolveConnection({ host: "10.9.9.9", user: "u" }, env({}, "/run/agent"));
        assert.deepEqual(byDefault.credentials, { agent: "/run/agent", agentOnly: true });
        const explicit = resolveConnection({ host: "10.9.9.9", user: "u", agent: "/other.sock" }, env({}, "/run/agent"));
        assert.deepEqual(explicit.credentials, { agent: "/other.sock", agentOnly: true });
        const withKey = resolveConnection({ host: "10.9.9.9", user: "u", privateKey: "K" }, env({}, "/run/agent"));
        assert.equal(withKey.credentials.agent, undefined, "an explicit key does not pull in SSH_AUTH_SOCK");
        const fromConfig = resolveConnection({ host: "agenthost" }, env({ [CONFIG]: CONFIG_TEXT }, "/run/agent"));
        assert.equal(fromConfig.credentials.agent, `${HOME}/agent.sock`);
    });

    it("an encrypted IdentityFile without passphrase steps aside for the agent", () => {
        const files = { [CONFIG]: CONFIG_TEXT, [`${HOME}/.ssh/id_10.0.1.2`]: encryptedKeyText };
        const target = resolveConnection({ host: "hv1", sshConfig: CONFIG }, env(files, "/run/agent"));
        assert.equal(target.credentials.privateKey, undefined);
        assert.equal(target.credentials.agent, "/run/agent");
    });

    it("no key, password, IdentityFile or agent: an AuthenticationError that says how to fix it", () => {
        const target = resolveConnection({ host: "10.9.9.9", user: "u" }, env({}));
        assert.throws(() => assertHasCredentials(target, "u@10.9.9.9:22"), (error: Error) =>
            error instanceof AuthenticationError && /no SSH credentials/.test(error.message) && /ssh-add/.test(error.message));
    });

    it("a jump host without credentials of its own borrows the target's key and agent, never its password", () => {
        const both = resolveConnection({ host: "10.9.9.9", user: "u", privateKey: "K", privateKeyPassphrase: "P", password: "hv-secret", proxyJump: "jump" },
            env({}, "/run/agent"));
        assert.equal(both.credentials.password, "hv-secret", "the target keeps its own password");
        assert.deepEqual(both.hops[0].credentials, { privateKey: "K", privateKeyPassphrase: "P", agent: undefined, agentOnly: false });
        const withAgent = resolveConnection({ host: "10.9.9.9", user: "u", agent: "/a.sock", password: "hv-secret", proxyJump: "jump" }, env({}));
        assert.equal(withAgent.hops[0].credentials.password, undefined);
        assert.equal(withAgent.hops[0].credentials.agent, "/a.sock");
        const hopKey = resolveConnection({ host: "hv1", password: "hv-secret" }, env({ [CONFIG]: CONFIG_TEXT, [`${HOME}/.ssh/bastion_key`]: keyText }));
        assert.deepEqual(hopKey.hops[0].credentials, { privateKey: keyText, privateKeyPassphrase: undefined, agent: undefined, agentOnly: false },
            "the hop's own IdentityFile, no password");
    });

    it("a jump host left with nothing once the password is withheld: an AuthenticationError naming the hop and how to give it a key", () => {
        const onlyPassword = resolveConnection({ host: "10.9.9.9", user: "u", password: "hv-secret", proxyJump: "root@jump" }, env({}));
        const [hop] = onlyPassword.hops;
        assert.equal(hop.credentials.password, undefined);
        assert.throws(() => assertHasCredentials(hop, "root@jump:22", 1), (error: Error) =>
            error instanceof AuthenticationError && error.message.startsWith("no SSH credentials for jump host 1 (root@jump:22)")
            && /password is never offered to a jump host/.test(error.message) && /Fix: give jump host 1 its own key \(connection.proxyJump as objects/.test(error.message)
            && !error.message.includes("hv-secret"));
        // With SSH_AUTH_SOCK the hop tries the agent, as ssh -J does.
        assert.deepEqual(resolveConnection({ host: "10.9.9.9", user: "u", password: "hv-secret", proxyJump: "jump" }, env({}, "/run/agent")).hops[0].credentials,
            { agent: "/run/agent", agentOnly: true });
    });

    it("sshConfig false reads no file; a missing explicit file is an InputError naming it; a missing default is fine", () => {
        const off = resolveConnection({ host: "hv1", user: "u", sshConfig: false }, env({ [CONFIG]: CONFIG_TEXT }, "/a"));
        assert.deepEqual([off.host, off.configPath], ["hv1", undefined]);
        assert.throws(() => resolveConnection({ host: "hv1", sshConfig: "~/nope" }, env({})),
            (error: Error) => error instanceof InputError && error.message.includes(`${HOME}/nope`));
        assert.equal(resolveConnection({ host: "hv1", user: "u" }, env({}, "/a")).configPath, undefined);
    });

    it("StrictHostKeyChecking no is not followed but reported (for the engine log)", () => {
        const target = resolveConnection({ host: "lax", user: "u" }, env({ [CONFIG]: CONFIG_TEXT }, "/a"));
        assert.equal(target.hostKeys.insecureIgnoreHostKey, false);
        assert.equal(target.warnings.length, 1);
        assert.match(target.warnings[0], /StrictHostKeyChecking no for 'lax': not followed/);
    });

    it("a bad Port in the file is an InputError naming the file and host", () => {
        assert.throws(() => resolveConnection({ host: "x" }, env({ [CONFIG]: "Host x\n  Port twenty\n" })),
            (error: Error) => error instanceof InputError && error.message.includes(CONFIG) && error.message.includes("'x'"));
    });

    it("Match exec is never run (it would run a shell command inside the provider)", () => {
        const marker = join(dir, "exec-ran");
        const target = resolveConnection({ host: "m", user: "u" }, env({ [CONFIG]: `Match exec "touch ${marker}"\n  HostName 10.6.6.6\n` }, "/a"));
        assert.equal(target.host, "m");
        assert.throws(() => readFileSync(marker));
    });

    it("the README lists every keyword honoured", () => {
        const readme = readFileSync(join(__dirname, "..", "..", "..", "README.md"), "utf8");
        const section = readme.slice(readme.indexOf("### SSH config"), readme.indexOf("### Jump hosts"));
        for (const keyword of HONOURED_KEYWORDS.map((k) => k.split(" ")[0])) assert.ok(section.includes(`\`${keyword}`), `README's SSH config section lacks ${keyword}`);
    });

    it("identity for the rule tables: two aliases of the same HostName and Port are no replacement; another host is", () => {
        const files = { [CONFIG]: CONFIG_TEXT };
        assert.deepEqual(resolvedHostAndPort({ host: "hv1-again" }, env(files)), { host: "10.0.1.2", port: 2201 });
        // The diff reads the real file the connection names.
        const configPath = join(dir, "ssh_config");
        writeFileSync(configPath, CONFIG_TEXT);
        const at = (connection: Partial<ConnectionInputs>) => ({ domain: "vm1", connection: { sshConfig: configPath, ...connection } });
        const sameHost = classifyChanges(DOMAIN_RESOURCES_RULES, at({ host: "hv1" }), at({ host: "hv1-again" }), true);
        assert.deepEqual(sameHost.map((c) => [c.path, c.kind]), [["connection", "none"]]);
        const sameByAddress = classifyChanges(DOMAIN_RESOURCES_RULES, at({ host: "hv1" }), at({ host: "10.0.1.2", port: 2201 }), true);
        assert.deepEqual(sameByAddress.map((c) => [c.path, c.kind]), [["connection", "none"]]);
        const otherHost = classifyChanges(DOMAIN_RESOURCES_RULES, at({ host: "hv1" }), at({ host: "bastion" }), true);
        assert.deepEqual(otherHost.map((c) => [c.path, c.kind]), [["connection.host", "replace"], ["connection.port", "replace"]]);
        const otherPort = classifyChanges(DOMAIN_RESOURCES_RULES, at({ host: "hv1" }), at({ host: "hv1", port: 22 }), true);
        assert.deepEqual(otherPort.map((c) => [c.path, c.kind]), [["connection.port", "replace"]]);
        // Without a config the name is the host: a rename is a replacement, as before.
        const plain = (host: string) => ({ domain: "vm1", connection: { host, sshConfig: false } });
        assert.deepEqual(classifyChanges(DOMAIN_RESOURCES_RULES, plain("a"), plain("b"), true).map((c) => [c.path, c.kind]),
            [["connection.host", "replace"]]);
    });
});
