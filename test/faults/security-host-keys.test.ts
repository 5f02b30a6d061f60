/**
 * Host key verification against the rig's real sshd (127.0.0.1:2222), on pll-fault1: an unknown
 * key and a changed key are refused before any command runs (the domain XML stays byte-identical
 * although the refused call asked for a memory change); a matching pinned fingerprint is accepted;
 * insecureIgnoreHostKey accepts any key only when it is set to true.
 */
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "crypto";
import { execFileSync } from "child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import type { ConnectionInputs, DomainResourcesInputs, DomainResourcesOutputs } from "../../provider/contract";
import { HostKeyError, providers } from "../../provider/index";
import { REPO_ROOT, rejectsWith, resetGuest, RigEnv, rigConnection, rigUp, typed } from "../rig/rig-env";
import { assertXmlUnchanged, settledXmls, checkRefusal, DomainXmls, FAULT_GUEST, refreshThenPreviewAgree } from "./security-fixtures";

describe("security: SSH host keys (pll-fault1)", function () {
    this.timeout(120_000);
    const resources = typed<DomainResourcesInputs, DomainResourcesOutputs>(providers.domainResources);
    let env: RigEnv;
    let dir = "";
    let otherKeyBlob = "";
    let otherFingerprint = "";
    let baseline: DomainXmls;

    const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    /** A file under the test's directory holding `text`; its path. */
    const knownHosts = (name: string, text: string) => {
        const path = join(dir, name);
        writeFileSync(path, text);
        return path;
    };
    /** A change that would show in the XML had it run: 200 MiB instead of the rig's 256. */
    const changeWith = (connection: ConnectionInputs) => resources.create({ connection, domain: FAULT_GUEST, memory: "200MiB" });
    const readWith = (connection: ConnectionInputs) => resources.read("probe", { connection, domain: FAULT_GUEST } as DomainResourcesOutputs);

    before(async function () {
        this.timeout(300_000);
        env = rigUp();
        resetGuest(FAULT_GUEST);
        dir = mkdtempSync(join(tmpdir(), "pll-sec-hostkey-"));
        const otherKey = join(dir, "other_host_key");
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "not-the-rig", "-f", otherKey], { stdio: "ignore" });
        otherKeyBlob = readFileSync(`${otherKey}.pub`, "utf8").split(/\s+/)[1];
        otherFingerprint = execFileSync("ssh-keygen", ["-lf", `${otherKey}.pub`], { encoding: "utf8" }).split(/\s+/)[1];
        assert.notEqual(otherFingerprint, env.PLL_HOST_KEY_FINGERPRINT);
        baseline = await settledXmls(FAULT_GUEST);
    });

    after(() => rmSync(dir, { recursive: true, force: true }));

    describe("unknown host key", () => {
        for (const [label, content] of [
            ["an empty known_hosts", ""],
            ["a known_hosts that has the key only for port 22", () => `127.0.0.1 ${env.PLL_HOST_KEY}\n`],
            ["a missing known_hosts file", undefined],
        ] as const) {
            it(`${label}: refused, naming the fingerprint seen and how to pin it; nothing changed`, async () => {
                const path = content === undefined ? join(dir, "does-not-exist") : knownHosts(`kh-${label.length}`, typeof content === "function" ? content() : content);
                const error = await rejectsWith(changeWith(rigConnection(env, { knownHostsPath: path })), HostKeyError, [
                    new RegExp(`SSH host key ${escape(env.PLL_HOST_KEY_FINGERPRINT)} is not in ${escape(path)}`),
                    new RegExp(`connection\\.hostKey = "${escape(env.PLL_HOST_KEY_FINGERPRINT)}"`),
                    new RegExp(`ssh-keyscan -p 2222 127\\.0\\.0\\.1 >> ${escape(path)}`),
                    /check the fingerprint out of band/,
                    /host root@127\.0\.0\.1:2222/,
                ]);
                assert.equal(error.context.host, "root@127.0.0.1:2222");
                assertXmlUnchanged(FAULT_GUEST, baseline, label);
            });
        }
    });

    describe("changed host key", () => {
        it("a known_hosts entry with another key for [127.0.0.1]:2222: refused as a possible man in the middle; nothing changed", async () => {
            const path = knownHosts("kh-changed", `# another host\n[127.0.0.1]:2200 ${env.PLL_HOST_KEY}\n[127.0.0.1]:2222 ssh-ed25519 ${otherKeyBlob}\n`);
            await rejectsWith(changeWith(rigConnection(env, { knownHostsPath: path })), HostKeyError, [
                new RegExp(`SSH host key ${escape(env.PLL_HOST_KEY_FINGERPRINT)} does not match the key ${escape(path)} holds`),
                /the host key changed or someone is in the middle/,
                /verify the new key out of band and update known_hosts/,
            ]);
            assertXmlUnchanged(FAULT_GUEST, baseline, "changed key");
        });

        it("the same with a hashed known_hosts entry (HashKnownHosts yes)", async () => {
            const salt = randomBytes(20);
            const hash = createHmac("sha1", salt).update("[127.0.0.1]:2222").digest("base64");
            const path = knownHosts("kh-hashed", `|1|${salt.toString("base64")}|${hash} ssh-ed25519 ${otherKeyBlob}\n`);
            await rejectsWith(changeWith(rigConnection(env, { knownHostsPath: path })), HostKeyError, [/does not match the key/]);
            // The same hashed entry holding the real key is accepted: the hash is read, not skipped.
            const good = knownHosts("kh-hashed-good", `|1|${salt.toString("base64")}|${hash} ${env.PLL_HOST_KEY}\n`);
            assert.equal((await readWith(rigConnection(env, { knownHostsPath: good }))).props?.state, "running");
            assertXmlUnchanged(FAULT_GUEST, baseline, "hashed changed key");
        });

        it("a pinned fingerprint of another key: refused, naming the fingerprint seen; nothing changed", async () => {
            const error = await rejectsWith(changeWith(rigConnection(env, { hostKey: otherFingerprint })), HostKeyError, [
                /does not match the pinned connection\.hostKey/, /update connection\.hostKey/,
            ]);
            assert.ok(error.message.includes(env.PLL_HOST_KEY_FINGERPRINT), error.message);
            assertXmlUnchanged(FAULT_GUEST, baseline, "pinned mismatch");
        });
    });

    describe("pinned fingerprint", () => {
        it("a matching pin is accepted without known_hosts, even when known_hosts holds another key", async () => {
            const stale = knownHosts("kh-stale", `[127.0.0.1]:2222 ssh-ed25519 ${otherKeyBlob}\n`);
            const connection = rigConnection(env, { hostKey: env.PLL_HOST_KEY_FINGERPRINT, knownHostsPath: stale });
            const inputs: DomainResourcesInputs = { connection, domain: FAULT_GUEST, memory: "256MiB" };
            const { id, outs } = await resources.create(inputs);
            assert.equal(outs.currentMemoryKiB, 262144);
            await refreshThenPreviewAgree(resources, id, outs, inputs);
            assertXmlUnchanged(FAULT_GUEST, baseline, "matching pin (no change asked)");
        });

        it("a malformed pin is refused by check, naming the field and the format", async () => {
            await checkRefusal(resources, { connection: rigConnection(env, { hostKey: "3oppjALt+g6+3cvEumPpBh3Rh1Rd6v2SLeIeWPf4bB0" }), domain: FAULT_GUEST },
                "connection.hostKey", [/connection\.hostKey: must be an OpenSSH fingerprint like SHA256:/, /ssh-keygen -lf/]);
        });
    });

    describe("insecureIgnoreHostKey", () => {
        it("true: any key is accepted (empty known_hosts); false or unset afterwards: refused again", async () => {
            const empty = knownHosts("kh-insecure", "");
            const read = await readWith(rigConnection(env, { knownHostsPath: empty, insecureIgnoreHostKey: true }));
            assert.equal(read.props?.state, "running");
            // A pooled connection opened with the flag must not serve the same host without it.
            await rejectsWith(changeWith(rigConnection(env, { knownHostsPath: empty, insecureIgnoreHostKey: false })), HostKeyError, [/is not in/]);
            await rejectsWith(changeWith(rigConnection(env, { knownHostsPath: empty })), HostKeyError, [/is not in/]);
            assertXmlUnchanged(FAULT_GUEST, baseline, "insecureIgnoreHostKey false/unset");
        });

        it("only the boolean true counts: the string \"true\" is refused by check", async () => {
            const connection = { ...rigConnection(env), insecureIgnoreHostKey: "true" } as unknown as ConnectionInputs;
            await checkRefusal(resources, { connection, domain: FAULT_GUEST }, "connection.insecureIgnoreHostKey",
                [/connection\.insecureIgnoreHostKey: must be true or false/]);
        });

        it("the README documents it, with its risk", () => {
            const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
            const row = readme.split("\n").find((l) => l.includes("`insecureIgnoreHostKey`"));
            assert.ok(row, "README has no insecureIgnoreHostKey row");
            assert.match(row, /false/);
            assert.match(row, /man in the middle/);
        });
    });
});
