/**
 * Secrets never appear in errors: a wrong private key, a wrong password, a wrong or missing
 * passphrase and an unparsable key each give an error whose message, string form, JSON form,
 * util.inspect form and stack hold no part of the key, password or passphrase. Each refused call
 * asked for a memory change on pll-fault1; its XML stays byte-identical.
 */
import assert from "node:assert/strict";
import { execFileSync } from "child_process";
import { randomBytes } from "crypto";
import { mkdtempSync, readFileSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { inspect } from "util";
import type { ConnectionInputs, DomainResourcesInputs, DomainResourcesOutputs } from "../../provider/contract";
import { AuthenticationError, InputError, providers } from "../../provider/index";
import { rejectsWith, resetGuest, RigEnv, rigConnection, rigUp, typed } from "../rig/rig-env";
import { assertXmlUnchanged, settledXmls, DomainXmls, FAULT_GUEST } from "./security-fixtures";

/** Every form an error reaches a user or a log in. */
function renderings(error: unknown): string[] {
    const e = error as Error;
    return [e.message, String(e), JSON.stringify(e), inspect(e, { depth: 6, showHidden: true }), e.stack ?? ""];
}

/** Fails if any 10-character piece of `secret` (or the whole of a shorter one) shows in the error. */
function assertNoSecret(error: unknown, secret: string, what: string): void {
    const body = secret.split("\n").filter((l) => !l.startsWith("-----")).join("");
    const pieces = body.length <= 10 ? [body] : Array.from({ length: Math.ceil((body.length - 10) / 3) + 1 }, (_, i) => body.slice(i * 3, i * 3 + 10));
    for (const text of renderings(error)) {
        for (const piece of pieces) assert.ok(!text.includes(piece), `the error shows part of the ${what} ("${piece}"): ${text.slice(0, 300)}`);
    }
}

describe("security: secrets never appear in errors (pll-fault1)", function () {
    this.timeout(120_000);
    const resources = typed<DomainResourcesInputs, DomainResourcesOutputs>(providers.domainResources);
    let env: RigEnv;
    let dir = "";
    let rigKey = "";
    let encryptedKey = "";
    let passphrase = "";
    let password = "";
    let baseline: DomainXmls;

    const changeWith = (connection: ConnectionInputs) => resources.create({ connection, domain: FAULT_GUEST, memory: "200MiB" });
    const readWith = (connection: ConnectionInputs) => resources.read("probe", { connection, domain: FAULT_GUEST } as DomainResourcesOutputs);
    /** pllpass by password only (the rig's sshd allows nothing else for it). */
    const passwordConnection = (pw: string): ConnectionInputs => ({ ...rigConnection(env), user: env.PLL_PASSWORD_USER, privateKey: undefined, password: pw });
    const encryptedConnection = (pp: string | undefined): ConnectionInputs => rigConnection(env, { privateKey: encryptedKey, privateKeyPassphrase: pp });

    before(async function () {
        this.timeout(300_000);
        env = rigUp();
        resetGuest(FAULT_GUEST);
        dir = mkdtempSync(join(tmpdir(), "pll-sec-secrets-"));
        rigKey = readFileSync(env.PLL_SSH_KEY, "utf8");
        encryptedKey = readFileSync(env.PLL_SSH_KEY_ENC, "utf8");
        passphrase = readFileSync(env.PLL_SSH_KEY_ENC_PASSPHRASE_FILE, "utf8").trim();
        password = readFileSync(env.PLL_PASSWORD_FILE, "utf8").trim();
        assert.ok(passphrase.length >= 8 && password.length >= 8, "the rig's secrets are long enough to search for");
        baseline = await settledXmls(FAULT_GUEST);
    });

    after(() => rmSync(dir, { recursive: true, force: true }));

    it("baselines: the right password (pllpass) and the right passphrase both work", async () => {
        assert.equal((await readWith(passwordConnection(password))).props?.state, "running");
        assert.equal((await readWith(encryptedConnection(passphrase))).props?.state, "running");
    });

    it("a wrong private key → AuthenticationError that shows neither that key nor the rig's", async () => {
        const keyPath = join(dir, "wrong_key");
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "wrong", "-f", keyPath], { stdio: "ignore" });
        const wrongKey = readFileSync(keyPath, "utf8");
        const error = await rejectsWith(changeWith(rigConnection(env, { privateKey: wrongKey })), AuthenticationError, [
            /SSH server refused the credentials for user 'root'/, /authorized_keys/,
        ]);
        assertNoSecret(error, wrongKey, "wrong private key");
        assertNoSecret(error, rigKey, "rig private key");
        assertXmlUnchanged(FAULT_GUEST, baseline, "wrong key");
    });

    it("a wrong password → AuthenticationError that shows neither the wrong nor the right password", async () => {
        const wrong = `Wr0ng-${randomBytes(9).toString("base64url")}`;
        const error = await rejectsWith(changeWith(passwordConnection(wrong)), AuthenticationError, [
            new RegExp(`refused the credentials for user '${env.PLL_PASSWORD_USER}'`), /password/,
        ]);
        assertNoSecret(error, wrong, "wrong password");
        assertNoSecret(error, password, "real password");
        assertXmlUnchanged(FAULT_GUEST, baseline, "wrong password");
    });

    it("a wrong passphrase → AuthenticationError naming privateKeyPassphrase, showing neither passphrase nor key", async () => {
        const wrong = `Wr0ng-${randomBytes(9).toString("base64url")}`;
        const error = await rejectsWith(changeWith(encryptedConnection(wrong)), AuthenticationError, [
            /could not be decrypted/, /connection\.privateKeyPassphrase is wrong or missing/, /Fix: give the passphrase/,
        ]);
        assertNoSecret(error, wrong, "wrong passphrase");
        assertNoSecret(error, passphrase, "real passphrase");
        assertNoSecret(error, encryptedKey, "encrypted private key");
        assertXmlUnchanged(FAULT_GUEST, baseline, "wrong passphrase");
    });

    it("a missing passphrase for an encrypted key → AuthenticationError naming privateKeyPassphrase", async () => {
        const error = await rejectsWith(changeWith(encryptedConnection(undefined)), AuthenticationError, [/privateKeyPassphrase is wrong or missing/]);
        assertNoSecret(error, encryptedKey, "encrypted private key");
        assertXmlUnchanged(FAULT_GUEST, baseline, "missing passphrase");
    });

    it("a private key that is no key at all → InputError that does not echo it", async () => {
        const garbage = `-----BEGIN OPENSSH PRIVATE KEY-----\n${randomBytes(120).toString("base64")}\n-----END OPENSSH PRIVATE KEY-----\n`;
        const error = await rejectsWith(changeWith(rigConnection(env, { privateKey: garbage })), InputError, [/SSH private key could not be used/]);
        assertNoSecret(error, garbage, "unparsable key");
        assertXmlUnchanged(FAULT_GUEST, baseline, "garbage key");
    });

    it("check() failures about the connection never quote its secrets", async () => {
        const connection = { ...passwordConnection(password), privateKeyPassphrase: passphrase, privateKey: rigKey, port: 0, hostKey: "nope" };
        const failures = await resources.checkFailures({ connection, domain: FAULT_GUEST, memory: "200MiB" });
        assert.ok(failures.some((f) => f.property === "connection.port"), JSON.stringify(failures));
        const text = JSON.stringify(failures);
        for (const [secret, what] of [[password, "password"], [passphrase, "passphrase"], [rigKey, "private key"]] as const) {
            assertNoSecret({ message: text }, secret, what);
        }
    });
});
