import assert from "node:assert/strict";
import { execFileSync } from "child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { checkKnownHosts, fingerprintOf, knownHostsName, readKnownHosts } from "../../provider/transport/host-key";

interface GeneratedKey {
    /** The .pub line's key type and base64 blob. */
    type: string;
    base64: string;
    blob: Buffer;
    pubPath: string;
}

function generateKey(dir: string, name: string): GeneratedKey {
    const path = join(dir, name);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `${name}@test`, "-f", path], { stdio: "ignore" });
    const [type, base64] = readFileSync(`${path}.pub`, "utf8").trim().split(/\s+/);
    return { type, base64, blob: Buffer.from(base64, "base64"), pubPath: `${path}.pub` };
}

/** Hashes every host name in a known_hosts text with ssh-keygen -H, as HashKnownHosts does. */
function hashed(dir: string, text: string): string {
    const path = join(dir, `known_hosts_${Math.random().toString(36).slice(2)}`);
    writeFileSync(path, text);
    execFileSync("ssh-keygen", ["-H", "-f", path], { stdio: "ignore" });
    return readFileSync(path, "utf8");
}

describe("host-key", () => {
    let dir: string;
    let key: GeneratedKey;
    let other: GeneratedKey;

    before(() => {
        dir = mkdtempSync(join(tmpdir(), "pll-hostkey-"));
        key = generateKey(dir, "host");
        other = generateKey(dir, "other");
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    describe("fingerprintOf", () => {
        it("matches ssh-keygen -lf", () => {
            const printed = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", key.pubPath], { encoding: "utf8" });
            const expected = printed.trim().split(/\s+/)[1];
            assert.match(expected, /^SHA256:/);
            assert.equal(fingerprintOf(key.blob), expected);
        });

        it("differs for another key and carries no base64 padding", () => {
            assert.notEqual(fingerprintOf(key.blob), fingerprintOf(other.blob));
            assert.match(fingerprintOf(key.blob), /^SHA256:[A-Za-z0-9+/]{43}$/);
        });
    });

    describe("knownHostsName", () => {
        it("is bare for port 22 and bracketed otherwise", () => {
            assert.equal(knownHostsName("hv1", 22), "hv1");
            assert.equal(knownHostsName("hv1", 2222), "[hv1]:2222");
            assert.equal(knownHostsName("10.0.0.5", 2200), "[10.0.0.5]:2200");
        });
    });

    describe("checkKnownHosts", () => {
        const line = (hosts: string, k: GeneratedKey): string => `${hosts} ${k.type} ${k.base64}`;

        it("plain host entry: match", () => {
            assert.equal(checkKnownHosts(line("hv1", key) + "\n", "hv1", 22, key.blob), "match");
        });

        it("plain host entry with a trailing comment and CRLF: match", () => {
            assert.equal(checkKnownHosts(`${line("hv1", key)} root@hv1\r\n`, "hv1", 22, key.blob), "match");
        });

        it("a host absent from the file: unknown", () => {
            assert.equal(checkKnownHosts(line("hv2", key), "hv1", 22, key.blob), "unknown");
            assert.equal(checkKnownHosts("", "hv1", 22, key.blob), "unknown");
        });

        it("the host with another key: changed", () => {
            assert.equal(checkKnownHosts(line("hv1", other), "hv1", 22, key.blob), "changed");
        });

        it("any of several entries for the host may match", () => {
            const text = [line("hv1", other), line("hv1", key)].join("\n");
            assert.equal(checkKnownHosts(text, "hv1", 22, key.blob), "match");
        });

        it("[host]:port entries match only that port", () => {
            const text = line("[hv1]:2222", key);
            assert.equal(checkKnownHosts(text, "hv1", 2222, key.blob), "match");
            assert.equal(checkKnownHosts(text, "hv1", 22, key.blob), "unknown");
            assert.equal(checkKnownHosts(text, "hv1", 2200, key.blob), "unknown");
            assert.equal(checkKnownHosts(line("hv1", key), "hv1", 2222, key.blob), "unknown");
        });

        it("comma lists of names", () => {
            const text = line("hv0,hv1,10.0.0.5", key);
            assert.equal(checkKnownHosts(text, "hv1", 22, key.blob), "match");
            assert.equal(checkKnownHosts(text, "10.0.0.5", 22, key.blob), "match");
            assert.equal(checkKnownHosts(text, "hv", 22, key.blob), "unknown");
            assert.equal(checkKnownHosts(line("hv0,hv1", other), "hv1", 22, key.blob), "changed");
        });

        it("skips comments and blank lines", () => {
            const text = `# ${line("hv1", key)}\n\n   \n${line("hv9", key)}`;
            assert.equal(checkKnownHosts(text, "hv1", 22, key.blob), "unknown");
        });

        it("hashed |1|salt|hash entries from ssh-keygen -H", () => {
            const text = hashed(dir, [line("hv1", key), line("[hv1]:2222", key), line("hv2", other)].join("\n") + "\n");
            assert.ok(text.split("\n").filter(Boolean).every((l) => l.startsWith("|1|")), text);
            assert.ok(!text.includes("hv1"));
            assert.equal(checkKnownHosts(text, "hv1", 22, key.blob), "match");
            assert.equal(checkKnownHosts(text, "hv1", 2222, key.blob), "match");
            assert.equal(checkKnownHosts(text, "hv2", 22, key.blob), "changed");
            assert.equal(checkKnownHosts(text, "hv3", 22, key.blob), "unknown");
            assert.equal(checkKnownHosts(text, "hv1", 2200, key.blob), "unknown");
        });

        it("@revoked for a matching host refuses the key, even when another line lists it (before or after)", () => {
            const valid = line("hv1", key);
            const revoked = `@revoked ${line("hv1", key)}`;
            assert.equal(checkKnownHosts([valid, revoked].join("\n"), "hv1", 22, key.blob), "revoked");
            assert.equal(checkKnownHosts([revoked, valid].join("\n"), "hv1", 22, key.blob), "revoked");
            assert.equal(checkKnownHosts(`@revoked * ${key.type} ${key.base64}\n${valid}`, "hv1", 22, key.blob), "revoked");
            assert.equal(checkKnownHosts(hashed(dir, valid + "\n") + `@revoked [hv1]:2222,hv1 ${key.type} ${key.base64}\n`, "hv1", 22, key.blob), "revoked");
        });

        it("@revoked applies only to its own key and hosts", () => {
            const text = [line("hv1", key), line("hv2", key), `@revoked hv2 ${other.type} ${other.base64}`, `@revoked hv3 ${key.type} ${key.base64}`].join("\n");
            assert.equal(checkKnownHosts(text, "hv1", 22, key.blob), "match");
            assert.equal(checkKnownHosts(text, "hv2", 22, key.blob), "match");
            assert.equal(checkKnownHosts(`@revoked !hv1,* ${key.type} ${key.base64}\n${line("hv1", key)}`, "hv1", 22, key.blob), "match");
        });

        it("host patterns as OpenSSH matches them: *, ?, !negation, case, [host]:port with wildcards", () => {
            assert.equal(checkKnownHosts(line("*.lab", key), "hv1.lab", 22, key.blob), "match");
            assert.equal(checkKnownHosts(line("*.lab", key), "hv1.lab.example", 22, key.blob), "unknown");
            assert.equal(checkKnownHosts(line("hv?", key), "hv7", 22, key.blob), "match");
            assert.equal(checkKnownHosts(line("hv?", key), "hv10", 22, key.blob), "unknown");
            assert.equal(checkKnownHosts(line("hv.?", key), "hvx1", 22, key.blob), "unknown", "a dot is literal");
            assert.equal(checkKnownHosts(line("*,!hv1", key), "hv1", 22, key.blob), "unknown");
            assert.equal(checkKnownHosts(line("!hv1,*", key), "hv2", 22, key.blob), "match");
            assert.equal(checkKnownHosts(line("!hv1", key), "hv2", 22, key.blob), "unknown", "a negation alone matches nothing");
            assert.equal(checkKnownHosts(line("HV1.Lab", key), "hv1.lab", 22, key.blob), "match");
            assert.equal(checkKnownHosts(line("[10.0.0.*]:2222", key), "10.0.0.5", 2222, key.blob), "match");
            assert.equal(checkKnownHosts(line("[10.0.0.*]:2222", key), "10.0.0.5", 22, key.blob), "unknown");
        });

        it("@cert-authority lines name a CA, never a host key", () => {
            assert.equal(checkKnownHosts(`@cert-authority hv1 ${key.type} ${key.base64}`, "hv1", 22, key.blob), "unknown");
            assert.equal(checkKnownHosts(`@cert-authority * ${key.type} ${key.base64}\n${line("hv1", other)}`, "hv1", 22, key.blob), "changed");
        });

        it("hashed entry with another key: changed", () => {
            const text = hashed(dir, line("hv1", other) + "\n");
            assert.equal(checkKnownHosts(text, "hv1", 22, key.blob), "changed");
        });
    });

    describe("readKnownHosts", () => {
        it("reads a file and returns empty text for a missing one", () => {
            const path = join(dir, "kh_read");
            writeFileSync(path, "hv1 ssh-ed25519 AAAA\n");
            assert.equal(readKnownHosts(path), "hv1 ssh-ed25519 AAAA\n");
            assert.equal(readKnownHosts(join(dir, "does-not-exist")), "");
        });

        it("throws for errors other than a missing file", () => {
            assert.throws(() => readKnownHosts(dir), /EISDIR|illegal operation on a directory/);
        });
    });
});
