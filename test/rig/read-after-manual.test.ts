/**
 * `read` (what `pulumi refresh` calls) after a change made by hand with virsh: a disk detached by
 * hand reads as gone; memory set by hand reads as the new value. pll-guest2.
 */
import assert from "node:assert/strict";
import type { AttachedDiskInputs, AttachedDiskOutputs, DomainResourcesInputs, DomainResourcesOutputs } from "../../provider/contract";
import { providers } from "../../provider/index";
import {
    configXml, createImage, currentMemoryKiB, diskByTarget, GUEST2, liveXml, removeFiles, resetGuest, resetGuestInBackground, RigEnv, rigConnection,
    rigUp, typed, virshLocal, waitFor,
} from "./rig-env";

describe("rig: read after a change made by hand (pll-guest2)", function () {
    this.timeout(180_000);
    let env: RigEnv;
    const images: string[] = [];

    before(function () {
        this.timeout(300_000);
        env = rigUp();
        resetGuest(GUEST2);
    });

    after(() => {
        removeFiles(images);
        resetGuestInBackground(GUEST2);
    });

    it("AttachedDisk: detached by hand (virsh detach-disk --persistent) → read returns no id", async () => {
        const disks = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
        const source = createImage(env, "manual");
        images.push(source);
        const { id, outs } = await disks.create({ connection: rigConnection(env), domain: GUEST2, source });
        assert.equal((await disks.read(id, outs)).id, id, "read finds it while attached");

        virshLocal(["detach-disk", GUEST2, outs.target, "--persistent"]);
        await waitFor(`${outs.target} gone from the live XML`, () => diskByTarget(liveXml(GUEST2), outs.target) === undefined, { timeoutMs: 15_000 });
        assert.equal(diskByTarget(configXml(GUEST2), outs.target), undefined);

        const read = await disks.read(id, outs);
        assert.equal(read.id, undefined, "gone: no id, so the engine drops it");
        assert.equal(read.props, undefined);
    });

    it("DomainResources: virsh setmem --live --config by hand → read reports the new memory (and the diff shows the drift)", async () => {
        const resources = typed<DomainResourcesInputs, DomainResourcesOutputs>(providers.domainResources);
        const inputs: DomainResourcesInputs = { connection: rigConnection(env), domain: GUEST2, memory: "256MiB" };
        const { id, outs } = await resources.create(inputs);
        assert.equal(outs.currentMemoryKiB, 256 * 1024);

        virshLocal(["setmem", GUEST2, "320M", "--live", "--config"]);
        assert.equal(currentMemoryKiB(configXml(GUEST2)), 320 * 1024, "the hand change landed");

        const read = await resources.read(id, outs);
        assert.equal(read.id, id);
        assert.ok(read.props);
        assert.equal(read.props.memory, "320MiB");
        assert.equal(read.props.currentMemoryKiB, 320 * 1024);
        assert.equal(read.props.pendingReboot, false);

        // The program still says 256MiB: refresh then preview shows a live memory change, not a replacement.
        const diff = await resources.diff(id, read.props, inputs);
        assert.equal(diff.changes, true);
        assert.deepEqual(diff.replaces, []);
    });
});
