/**
 * Faults injected around and inside real engine runs (test/engine/engine-fixture.ts: the package
 * installed from its tarball, the source-built CLI, a local backend). Each case ends the way the
 * issue asks: `pulumi refresh`, then `preview --expect-no-changes`, agreeing with `virsh dumpxml`
 * read on the test's own channel.
 *
 * - sshd (our own, 127.0.0.1:2223) killed and restarted between two ups, and during an up while
 *   an attach's answer is in flight (pll-fault2);
 * - a guest that ignores hot-unplug (pll-noos): the up that removes a disk fails, the disk stays
 *   in the stack; after `virsh reset` the next up completes;
 * - the domain's persistent config made immutable (pll-fault3): the up fails saying which half
 *   landed; with the file writable again the next up converges.
 */
import assert from "node:assert/strict";
import type * as AutomationModule from "@pulumi/pulumi/automation";
import {
    configXml, createImage, diskBySource, diskCount, interfacesIn, liveXml, NOOS, removeFiles, resetGuest, resetGuestInBackground, RigEnv, rigUp, virshLocal, waitFor,
} from "../rig/rig-env";
import { changed, Consumer, EngineRunError, installConsumer, openTestStack, rigStackConnection, TestStack } from "../engine/engine-fixture";
import { FaultSshd, setConfigWritable, sleep } from "./fault-env";

const FAULT2 = "pll-fault2";
const FAULT3 = "pll-fault3";
const configWritable = (writable: boolean): void => setConfigWritable(FAULT3, writable);

async function upFails(stack: TestStack): Promise<EngineRunError> {
    try {
        await stack.up();
    } catch (error) {
        assert.ok(error instanceof EngineRunError, `an engine failure, got ${String(error)}`);
        return error;
    }
    assert.fail("the up succeeded");
}

/** refresh changes nothing and preview --expect-no-changes passes. */
async function converged(stack: TestStack): Promise<void> {
    const refresh = await stack.refresh();
    assert.deepEqual(changed(refresh), {}, `refresh found drift: ${JSON.stringify(refresh.ops)}`);
    const preview = await stack.preview({ expectNoChanges: true });
    assert.deepEqual(changed(preview), {});
}

describe("faults through the engine: sshd restarts, a guest that ignores unplug, an unwritable config", function () {
    this.timeout(600_000);
    let env: RigEnv;
    let consumer: Consumer;
    const stacks: TestStack[] = [];
    const images: string[] = [];

    const open = async (name: string, program: AutomationModule.PulumiFn): Promise<TestStack> => {
        const stack = await openTestStack(consumer, name, program);
        stacks.push(stack);
        return stack;
    };

    before(async function () {
        env = rigUp();
        consumer = await installConsumer();
    });

    after(async function () {
        for (const stack of stacks) await stack.destroy().catch(() => undefined);
        for (const stack of stacks) await stack.remove();
        configWritable(true);
        removeFiles(images);
    });

    describe("sshd killed and restarted (own sshd on 2223, pll-fault2)", function () {
        let sshd: FaultSshd;
        let stack: TestStack;
        const disks: string[] = [];

        before(function () {
            sshd = new FaultSshd(env);
            sshd.start();
            resetGuest(FAULT2);
            for (const label of ["eng-a", "eng-b", "eng-c"]) disks.push(createImage(env, label));
            images.push(...disks);
        });

        after(async function () {
            sshd.clearRules();
            if (!sshd.listening()) sshd.restart();
            await stack?.destroy().catch(() => undefined);
            sshd.stop();
            resetGuestInBackground(FAULT2);
        });

        const program = (count: number, nic: boolean): AutomationModule.PulumiFn => async () => {
            const sdk = consumer.load();
            const connection = rigStackConnection(consumer, env, { port: sshd.port, hostKey: env.PLL_HOST_KEY_FINGERPRINT, knownHostsPath: undefined });
            const out: Record<string, unknown> = {};
            disks.slice(0, count).forEach((source, i) => {
                out[`target${i}`] = new sdk.AttachedDisk(`disk${i}`, { connection, domain: FAULT2, source }).target;
            });
            if (nic) out.mac = new sdk.AttachedInterface("nic", { connection, domain: FAULT2, type: "bridge", source: env.PLL_BRIDGE }).mac;
            return out;
        };

        it("between two ups: up, sshd killed and restarted, the next up (2 more disks + a NIC) lands; refresh and preview agree with dumpxml", async () => {
            stack = await open("fault-sshd", program(1, false));
            const first = await stack.up();
            assert.deepEqual(changed(first), { disk0: "create" });
            assert.deepEqual(diskCount(FAULT2, disks[0]), { live: 1, config: 1 });

            sshd.kill();
            sshd.restart();
            stack.setProgram(program(3, true));
            const second = await stack.up();
            assert.deepEqual(changed(second), { disk1: "create", disk2: "create", nic: "create" });
            for (const d of disks) assert.deepEqual(diskCount(FAULT2, d), { live: 1, config: 1 }, d);
            await converged(stack);
        });

        it("during an up: sshd killed while an attach's answer is in flight, restarted 1.5 s later; the up succeeds, nothing attached twice", async () => {
            stack.setProgram(program(3, false));
            const shrink = await stack.up();
            assert.deepEqual(changed(shrink), { nic: "delete" });
            assert.equal(interfacesIn(liveXml(FAULT2)).length, 0);

            stack.setProgram(program(3, true));
            sshd.clearCalls();
            sshd.rule("attach-device", "after", "4");
            const up = stack.up();
            await waitFor("the NIC attach to run on the host", () => sshd.calls().includes("attach-device ran 0"), { timeoutMs: 120_000 });
            sshd.kill();
            sshd.clearRules();
            await sleep(1500);
            sshd.restart();
            const result = await up;
            assert.deepEqual(changed(result), { nic: "create" });
            assert.equal(sshd.calls().filter((c) => c === "attach-device start").length, 1, "attach-device ran once");
            const live = interfacesIn(liveXml(FAULT2));
            const config = interfacesIn(configXml(FAULT2));
            assert.equal(live.length, 1, "one NIC live");
            assert.equal(config.length, 1, "one NIC in the config");
            assert.equal(live[0].mac, String(result.outputs.mac.value), "the stack holds the NIC that is there");
            await converged(stack);
            for (const d of disks) assert.deepEqual(diskCount(FAULT2, d), { live: 1, config: 1 }, d);
        });
    });

    describe("a guest that ignores hot-unplug (pll-noos)", function () {
        let source = "";

        before(function () {
            resetGuest(NOOS);
            source = createImage(env, "eng-noos");
            images.push(source);
        });

        after(function () {
            resetGuestInBackground(NOOS);
        });

        it("the up that removes the disk fails after detachTimeout with DeviceStillAttachedError, the disk stays in the stack; after a reboot the next up completes", async () => {
            const program = (withDisk: boolean): AutomationModule.PulumiFn => async () => {
                const sdk = consumer.load();
                if (!withDisk) return {};
                const disk = new sdk.AttachedDisk("noos-disk", { connection: rigStackConnection(consumer, env), domain: NOOS, source, detachTimeout: 5 });
                return { target: disk.target };
            };
            const stack = await open("fault-noos", program(true));
            await stack.up();
            assert.ok(diskBySource(liveXml(NOOS), source), "attached");

            stack.setProgram(program(false));
            const error = await upFails(stack);
            assert.match(error.message, /is still attached to the running guest: it did not release it within 5 s/);
            assert.match(error.message, /The resource stays in the stack until the device is gone/);
            assert.ok(stack.exportPlain().includes(source), "the disk is still in the stack");
            assert.ok(diskBySource(liveXml(NOOS), source), "and still in the running domain");
            const refresh = await stack.refresh();
            // Gone from the config, still live: refresh records that half missing (an update of its outputs), and keeps it.
            assert.equal(refresh.ops["noos-disk"], "update", "refresh keeps it, its config half recorded missing");
            assert.ok(stack.exportPlain().includes(source), "still in the stack after the refresh");

            virshLocal(["reset", NOOS]);
            await waitFor("the unplug to complete on reset", () => diskBySource(liveXml(NOOS), source) === undefined, { timeoutMs: 20_000 });
            const rerun = await stack.up();
            assert.deepEqual(changed(rerun), { "noos-disk": "delete" });
            assert.ok(!stack.exportPlain().includes(source), "gone from the stack");
            await converged(stack);
            assert.equal(diskBySource(liveXml(NOOS), source), undefined);
            assert.equal(diskBySource(configXml(NOOS), source), undefined);
        });
    });

    describe("live change succeeds, config write fails (pll-fault3)", function () {
        let source = "";

        before(function () {
            resetGuest(FAULT3);
            source = createImage(env, "eng-config-ro");
            images.push(source);
        });

        after(function () {
            configWritable(true);
            resetGuestInBackground(FAULT3);
        });

        it("the up fails saying the disk is live but not in the config; with the config writable the next up adds the missing half; refresh/preview agree", async () => {
            const program: AutomationModule.PulumiFn = async () => {
                const sdk = consumer.load();
                const disk = new sdk.AttachedDisk("ro-disk", { connection: rigStackConnection(consumer, env), domain: FAULT3, source });
                return { target: disk.target };
            };
            const stack = await open("fault-config-ro", program);
            configWritable(false);
            const error = await upFails(stack);
            configWritable(true);
            assert.match(error.message, /is attached to the running domain but not in its persistent config/);
            assert.match(error.message, /cannot rename file '\/etc\/libvirt\/qemu\/pll-fault3\.xml\.new'/);
            assert.deepEqual(diskCount(FAULT3, source), { live: 1, config: 0 }, "exactly as reported");

            const rerun = await stack.up();
            assert.deepEqual(changed(rerun), { "ro-disk": "create" });
            assert.deepEqual(diskCount(FAULT3, source), { live: 1, config: 1 }, "one disk, both halves");
            assert.equal(diskBySource(liveXml(FAULT3), source)?.target, String(rerun.outputs.target.value));
            await converged(stack);
            await stack.destroy();
            assert.deepEqual(diskCount(FAULT3, source), { live: 0, config: 0 });
        });
    });
});
