/**
 * Bad input through the real engine, on pll-fault1: a stack holding DomainResources and an
 * AttachedDisk is brought up; then a program with bad input is refused at `up` (once by check,
 * once by the providers on the host), the domain XML stays byte-identical, and with the good
 * program back, `pulumi refresh` then `preview --expect-no-changes` agree with virsh. Cheap
 * extra: the private key (a pulumi.secret) is in neither the failed run's log nor `stack export`.
 */
import assert from "node:assert/strict";
import { readFileSync } from "fs";
import type * as AutomationModule from "@pulumi/pulumi/automation";
import { changed, Consumer, EngineRunError, installConsumer, openTestStack, rigStackConnection, TestStack } from "../engine/engine-fixture";
import { blockList, configXml, createImage, currentMemoryKiB, missingPath, removeFiles, resetGuest, resetGuestInBackground, RigEnv, rigUp } from "../rig/rig-env";
import { assertXmlUnchanged, settledXmls, DomainXmls, FAULT_GUEST } from "./security-fixtures";

async function upRefused(stack: TestStack): Promise<EngineRunError> {
    try {
        await stack.up();
    } catch (error) {
        assert.ok(error instanceof EngineRunError, `an engine failure, got ${String(error)}`);
        return error;
    }
    assert.fail("the up with bad input succeeded");
}

describe("bad input through the engine (pll-fault1): refused at up, then refresh and preview agree", function () {
    this.timeout(900_000);
    let env: RigEnv;
    let consumer: Consumer;
    let stack: TestStack | undefined;
    let image = "";
    let keyBody = "";

    type Bad = { memory?: string; missingDisk?: string };
    const program = (bad: Bad = {}): AutomationModule.PulumiFn => async () => {
        const sdk = consumer.load();
        const connection = rigStackConnection(consumer, env);
        const res = new sdk.DomainResources("res", { connection, domain: FAULT_GUEST, memory: bad.memory ?? "256MiB", vcpus: 1 });
        const disk = new sdk.AttachedDisk("disk", { connection, domain: FAULT_GUEST, source: image });
        const out: Record<string, unknown> = { memoryKiB: res.currentMemoryKiB, target: disk.target };
        if (bad.missingDisk) out.missing = new sdk.AttachedDisk("missing", { connection, domain: FAULT_GUEST, source: bad.missingDisk }).target;
        return out;
    };

    before(async function () {
        env = rigUp();
        resetGuest(FAULT_GUEST);
        image = createImage(env, "bad-input-engine");
        keyBody = readFileSync(env.PLL_SSH_KEY, "utf8").split("\n").filter((l) => l && !l.startsWith("-----")).join("");
        consumer = await installConsumer();
    });

    after(async function () {
        if (stack) {
            stack.setProgram(program());
            await stack.destroy().catch(() => undefined);
            await stack.remove();
        }
        resetGuestInBackground(FAULT_GUEST);
        removeFiles([image]);
    });

    it("up refuses bad input, the XML is byte-identical, and refresh + preview --expect-no-changes agree with virsh", async () => {
        stack = await openTestStack(consumer, `bad-input-${process.pid}`, program());
        const first = await stack.up();
        assert.deepEqual(changed(first), { disk: "create", res: "create" });
        const target = String(first.outputs.target.value);
        assert.ok(blockList(FAULT_GUEST).some((d) => d.target === target && d.source === image));
        const good: DomainXmls = await settledXmls(FAULT_GUEST);

        // Refused by check (preview would say the same): memory without a unit.
        stack.setProgram(program({ memory: "512" }));
        const byCheck = await upRefused(stack);
        assert.match(byCheck.message, /memory: "512" needs a unit, e\.g\. "512MiB"/);
        assertXmlUnchanged(FAULT_GUEST, good, "up refused by check");

        // Refused on the host: above the running maximum under rebootPolicy "never", and a missing disk source.
        const missing = missingPath(env, "bad-input-engine");
        stack.setProgram(program({ memory: "1GiB", missingDisk: missing }));
        const byHost = await upRefused(stack);
        assert.match(byHost.message, /memory: 256MiB → 1GiB/);
        assert.match(byHost.message, /rebootPolicy is "never"/);
        assert.match(byHost.message, /does not exist on the host/);
        assert.match(byHost.message, /qemu-img create/);
        assert.deepEqual([...byHost.run.failed].sort(), ["missing", "res"]);
        assertXmlUnchanged(FAULT_GUEST, good, "up refused on the host");
        for (let i = 0; i + 16 <= keyBody.length; i += 8) {
            assert.ok(!byHost.run.log.includes(keyBody.slice(i, i + 16)), "the engine log shows part of the private key");
        }

        // The good program again: the state still matches the host.
        stack.setProgram(program());
        const refresh = await stack.refresh();
        assert.deepEqual(changed(refresh), {}, `refresh found drift: ${JSON.stringify(refresh.ops)}`);
        const preview = await stack.preview({ expectNoChanges: true });
        assert.deepEqual(changed(preview), {});
        assertXmlUnchanged(FAULT_GUEST, good, "refresh and preview");
        assert.equal(currentMemoryKiB(configXml(FAULT_GUEST)), 262144);

        const exported = stack.exportPlain();
        assert.ok(exported.includes(FAULT_GUEST));
        for (let i = 0; i + 16 <= keyBody.length; i += 8) {
            assert.ok(!exported.includes(keyBody.slice(i, i + 16)), "`pulumi stack export` shows part of the private key");
        }
    });
});
