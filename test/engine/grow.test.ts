/**
 * Growing running guests through the real engine (issue 9), on the rig's pll-grow1 and pll-grow2: one
 * `up` that grows a disk, sets its I/O limits, raises vCPUs above the host's CPU count and grows
 * memory past the boot maximum (virtio-mem) shows in preview as
 * updates (no replacement), applies without a restart, warns about the overcommit in the engine's
 * log, and `preview --expect-no-changes` passes after it; refresh sees a blockresize made by hand.
 * Every effect is checked with the test's own virsh.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import type * as AutomationModule from "@pulumi/pulumi/automation";
import type { DiskIoTune } from "../../provider/contract";
import { GROW1, GROW2, guestView, iotuneIn } from "../rig/grow-env";
import { configXml, imageInfo, liveXml, missingPath, removeFiles, resetGuest, resetGuestInBackground, RigEnv, rigUp, vcpuCounts, virshLocal, waitFor } from "../rig/rig-env";
import { changed, Consumer, EngineRunError, installConsumer, openTestStack, rigStackConnection, TestStack } from "./engine-fixture";
import { guestIdentity, GuestIdentity } from "./guest-facts";

const MiB = 1024 * 1024;
const DISK = "grow-data";
const RESOURCES = "grow-resources";
const MEMORY = "grow2-memory";

interface Version {
    size: string;
    vcpus: number;
    iotune?: DiskIoTune;
    /** pll-grow2's total memory (virtio-mem past its 512MiB boot maximum). */
    memory: string;
}

function capacity(): number {
    return Number(/^Capacity:\s*(\d+)/m.exec(virshLocal(["domblkinfo", GROW1, "vdb"]))?.[1]);
}

describe("engine: grow running guests in one up: disk size, I/O limits, vCPUs above the host's (pll-grow1), memory past the boot maximum (pll-grow2)", function () {
    this.timeout(600_000);
    let env: RigEnv;
    let consumer: Consumer;
    let stack: TestStack;
    let image = "";
    let identity: GuestIdentity;
    let identity2: GuestIdentity;

    const programFor = (c: Consumer, v: Version): AutomationModule.PulumiFn => async () => {
        const sdk = c.load();
        const connection = rigStackConnection(c, env);
        const disk = new sdk.AttachedDisk(DISK, { connection, domain: GROW1, source: image, target: "vdb", size: v.size, iotune: v.iotune });
        new sdk.DomainResources(RESOURCES, { connection, domain: GROW1, vcpus: v.vcpus });
        const memory = new sdk.DomainResources(MEMORY, { connection, domain: GROW2, memory: v.memory });
        return { capacityBytes: disk.capacityBytes, imageCreated: disk.imageCreated, hotplugCurrentKiB: memory.hotplugCurrentKiB };
    };

    before(async function () {
        env = rigUp();
        resetGuest(GROW1);
        resetGuest(GROW2);
        image = missingPath(env, "engine-grow");
        consumer = await installConsumer();
        stack = await openTestStack(consumer, "pll-grow-stack", programFor(consumer, { size: "64MiB", vcpus: 1, memory: "256MiB" }));
    });

    after(async function () {
        if (stack) {
            await stack.destroy().catch(() => undefined);
            await stack.remove();
        }
        removeFiles([image]);
        resetGuestInBackground(GROW1);
        resetGuestInBackground(GROW2);
    });

    it("v1: creates the image (64MiB) and attaches it", async () => {
        const run = await stack.up();
        assert.deepEqual(changed(run), { [DISK]: "create", [RESOURCES]: "create", [MEMORY]: "create" });
        assert.deepEqual(run.outputs.imageCreated.value, true);
        assert.equal(run.outputs.capacityBytes.value, 64 * MiB);
        assert.deepEqual(imageInfo(image), { format: "raw", virtualSize: 64 * MiB });
        identity = guestIdentity(GROW1);
        identity2 = guestIdentity(GROW2);
    });

    it("v2 in one up: 128MiB, an IOPS limit, 3 vCPUs on a 2-CPU host, 1280MiB past a 512MiB boot maximum: updates in preview, applied live, the overcommit warned", async () => {
        const hostCpus = Number(/^CPU\(s\):\s*(\d+)/m.exec(virshLocal(["nodeinfo"]))?.[1]);
        const v2 = { size: "128MiB", vcpus: hostCpus + 1, iotune: { totalIopsSec: 200 }, memory: "1280MiB" };
        stack.setProgram(programFor(consumer, v2));
        const preview = await stack.preview();
        assert.deepEqual(changed(preview), { [DISK]: "update", [RESOURCES]: "update", [MEMORY]: "update" });
        assert.deepEqual(preview.diffs[DISK], ["iotune", "size"]);
        assert.deepEqual(preview.replaceKeys, {});
        const run = await stack.up();
        assert.deepEqual(changed(run), { [DISK]: "update", [RESOURCES]: "update", [MEMORY]: "update" });
        assert.equal(run.outputs.hotplugCurrentKiB.value, 768 * 1024, "768MiB plugged by the device");
        await waitFor("pll-grow2's MemTotal over 1GiB", () => guestView(env, GROW2).MemTotal > 1024 * 1024, { describe: () => JSON.stringify(guestView(env, GROW2)) });
        assert.deepEqual(guestIdentity(GROW2), identity2, "pll-grow2: no restart");
        assert.equal(run.outputs.capacityBytes.value, 128 * MiB);
        assert.equal(capacity(), 128 * MiB, "domblkinfo");
        assert.equal(imageInfo(image).virtualSize, 128 * MiB, "the image");
        assert.deepEqual(iotuneIn(liveXml(GROW1), "vdb"), { total_iops_sec: 200 });
        assert.deepEqual(iotuneIn(configXml(GROW1), "vdb"), { total_iops_sec: 200 });
        assert.equal(vcpuCounts(liveXml(GROW1)).current, v2.vcpus);
        assert.match(run.log, new RegExp(`vcpus ${v2.vcpus} is more than the host's ${hostCpus} CPUs`), "the overcommit warning in the engine's output");
        assert.deepEqual(guestIdentity(GROW1), identity, "no restart");
        await stack.preview({ expectNoChanges: true });
    });

    it("refresh sees a blockresize made by hand; going back would shrink, so up refuses; taking the size in settles it", async () => {
        const hostCpus = Number(/^CPU\(s\):\s*(\d+)/m.exec(virshLocal(["nodeinfo"]))?.[1]);
        const v2 = { size: "128MiB", vcpus: hostCpus + 1, iotune: { totalIopsSec: 200 }, memory: "1280MiB" };
        virshLocal(["blockresize", GROW1, "vdb", "192M"]);
        const run = await stack.refresh();
        assert.equal(run.ops[DISK], "update", "the disk's state changed");
        assert.deepEqual(changed(await stack.preview()), { [DISK]: "update" }, "an update, not a replacement");
        const refused = await stack.up().then(() => undefined, (error: unknown) => error as EngineRunError);
        assert.ok(refused, "up must refuse to shrink the disk back");
        assert.match(refused.message, /size 128MiB is smaller than the disk's 192MiB: a shrink loses data, and nothing was changed/);
        assert.equal(capacity(), 192 * MiB, "nothing changed");
        stack.setProgram(programFor(consumer, { ...v2, size: "192MiB" }));
        await stack.up();
        await stack.preview({ expectNoChanges: true });
        assert.deepEqual(guestIdentity(GROW1), identity, "no restart");
        assert.ok(existsSync(image));
    });
});
