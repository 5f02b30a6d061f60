/**
 * The SSH connection against the rig's real sshd (127.0.0.1:2222): host key pinning and
 * known_hosts, and wrong credentials. Each case reads pll-guest1 through the provider (read),
 * which needs one SSH exec; nothing on the domain changes.
 */
import assert from "node:assert/strict";
import { execFileSync } from "child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import type { ConnectionInputs, DomainResourcesInputs, DomainResourcesOutputs } from "../../provider/contract";
import { AuthenticationError, HostKeyError, providers } from "../../provider/index";
import { domState, GUEST1, rejectsWith, resetGuest, RigEnv, rigConnection, rigUp, typed } from "./rig-env";

describe("rig: SSH connection (127.0.0.1:2222)", function () {
    this.timeout(60_000);
    const resources = typed<DomainResourcesInputs, DomainResourcesOutputs>(providers.domainResources);
    let env: RigEnv;
    let dir = "";
    let otherKeyPath = "";
    let otherFingerprint = "";
    let emptyKnownHosts = "";

    /** One read of pll-guest1 through the provider over `connection`. */
    const readWith = (connection: ConnectionInputs) =>
        resources.read("probe", { connection, domain: GUEST1 } as DomainResourcesOutputs);

    before(function () {
        this.timeout(300_000);
        env = rigUp();
        resetGuest(GUEST1); // a background reset of an earlier suite may still be booting it
        dir = mkdtempSync(join(tmpdir(), "pll-conn-"));
        otherKeyPath = join(dir, "other_ed25519");
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "not-the-rig", "-f", otherKeyPath], { stdio: "ignore" });
        otherFingerprint = execFileSync("ssh-keygen", ["-lf", `${otherKeyPath}.pub`], { encoding: "utf8" }).split(/\s+/)[1];
        assert.match(otherFingerprint, /^SHA256:/);
        assert.notEqual(otherFingerprint, env.PLL_HOST_KEY_FINGERPRINT);
        emptyKnownHosts = join(dir, "known_hosts_empty");
        writeFileSync(emptyKnownHosts, "");
    });

    after(() => rmSync(dir, { recursive: true, force: true }));

    it("the rig's known_hosts works (baseline)", async () => {
        const read = await readWith(rigConnection(env));
        assert.equal(read.id, "probe");
        assert.equal(read.props?.state, domState(GUEST1));
    });

    it("a pinned fingerprint of another key → HostKeyError naming the fingerprint seen", async () => {
        const error = await rejectsWith(readWith(rigConnection(env, { hostKey: otherFingerprint })), HostKeyError, [
            /does not match the pinned connection.hostKey/,
        ]);
        assert.ok(error.message.includes(env.PLL_HOST_KEY_FINGERPRINT), `message names the key seen: ${error.message}`);
    });

    it("an unknown host (empty known_hosts) is refused with the fingerprint seen", async () => {
        const error = await rejectsWith(readWith(rigConnection(env, { knownHostsPath: emptyKnownHosts })), HostKeyError, [
            /is not in/,
        ]);
        assert.ok(error.message.includes(env.PLL_HOST_KEY_FINGERPRINT), `message names the key seen: ${error.message}`);
        assert.ok(error.message.includes(emptyKnownHosts), "message names the known_hosts file");
    });

    it("the pinned correct fingerprint works (known_hosts not consulted)", async () => {
        const read = await readWith(rigConnection(env, { hostKey: env.PLL_HOST_KEY_FINGERPRINT, knownHostsPath: emptyKnownHosts }));
        assert.equal(read.id, "probe");
        assert.equal(read.props?.state, "running");
        assert.equal(read.props?.maximumVcpus, 4);
    });

    it("a wrong private key → AuthenticationError, and no part of the key in the message", async () => {
        const wrongKey = readFileSync(otherKeyPath, "utf8");
        const error = await rejectsWith(readWith(rigConnection(env, { privateKey: wrongKey })), AuthenticationError, [
            /refused the credentials/, new RegExp(`user '${env.PLL_SSH_USER}'`),
        ]);
        const body = wrongKey.split("\n").filter((l) => l && !l.startsWith("-----")).join("");
        assert.ok(body.length > 100);
        const texts = [error.message, String(error), JSON.stringify(error)];
        for (let i = 0; i + 12 <= body.length; i += 4) {
            const piece = body.slice(i, i + 12);
            for (const text of texts) assert.ok(!text.includes(piece), `the error contains key material "${piece}"`);
        }
        assert.ok(!texts.some((t) => /BEGIN OPENSSH PRIVATE KEY/.test(t)));
    });
});
