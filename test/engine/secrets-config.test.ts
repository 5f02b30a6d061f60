/**
 * Issue 3, test 7 (second half): the key as the examples take it, from secret stack config
 * (`pulumi config set --secret sshKey …`). The engine knows config secrets and masks them in
 * every event it emits, so here not even a debug line may hold the key. pll-e2e2, no change to it.
 */
import assert from "node:assert/strict";
import { readFileSync } from "fs";
import { configXml, currentMemoryKiB, resetGuest, RigEnv, rigConnection, rigUp } from "../rig/rig-env";
import { installConsumer, openTestStack, RunResult, TestStack } from "./engine-fixture";
import { guestIdentity } from "./guest-facts";
import { eventLeaks, keyFragments, leaksIn } from "./secret-scan";

const DOMAIN = "pll-e2e2";

describe("engine: the SSH key from secret stack config (pll-e2e2)", function () {
    this.timeout(300_000);
    let env: RigEnv;
    let stack: TestStack | undefined;

    before(() => {
        env = rigUp();
        resetGuest(DOMAIN); // a background reset of an earlier suite may still be booting it
    });

    after(async () => {
        await stack?.remove();
    });

    it("7b. secrets: a key from `config set --secret` reaches the provider (up works) and is in no export, state file, CLI output or engine event, debug lines included", async () => {
        const key = readFileSync(env.PLL_SSH_KEY, "utf8");
        const consumer = await installConsumer();
        const before = guestIdentity(DOMAIN);
        const memoryKiB = currentMemoryKiB(configXml(DOMAIN));
        stack = await openTestStack(consumer, "pll-e2e2-config-key", async () => {
            const sdk = consumer.load();
            const { privateKey: _fromFile, ...connection } = rigConnection(env);
            const privateKey = new consumer.pulumi.Config().requireSecret("sshKey");
            // Manages what the guest has now: nothing changes on it.
            new sdk.DomainResources("e2e2-resources", { connection: { ...connection, privateKey }, domain: DOMAIN, memory: `${memoryKiB / 1024}MiB` });
        }, { sshKey: { value: key, secret: true } });
        const runs: RunResult[] = [await stack.up(), await stack.preview({ expectNoChanges: true })];
        const exported = stack.exportPlain();
        runs.push(await stack.destroy());

        const fragments = keyFragments(key);
        assert.deepEqual(leaksIn(exported, fragments), [], "plain stack export");
        assert.deepEqual(leaksIn(readFileSync(stack.statePath, "utf8"), fragments), [], "state file");
        for (const run of runs) {
            assert.deepEqual(leaksIn(run.log, fragments), [], `${run.kind} CLI output`);
            assert.deepEqual(eventLeaks(run.events, fragments), { others: [], runtimeDebug: 0 }, `${run.kind} engine events`);
        }
        assert.match(JSON.stringify(runs[0].events), /\[secret\]/, "the engine masked the key where the runtime logged it");
        assert.deepEqual(guestIdentity(DOMAIN), before, "the guest was not restarted");
    });
});
