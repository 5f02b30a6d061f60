/**
 * A guest that ignores hot-unplug (pll-noos: no OS, never answers the ACPI eject). The detach
 * waits its bound and fails with DeviceStillAttachedError; the device stays in the running domain
 * and in state (read returns it). Then the guest reboots for real (`virsh reset`: QEMU completes a
 * pending unplug on reset) and the rerun of the delete completes. Through the providers; the
 * engine version of the same fault is in faults-engine.test.ts.
 */
import assert from "node:assert/strict";
import type { AttachedDiskInputs, AttachedDiskOutputs } from "../../provider/contract";
import { DeviceStillAttachedError, providers } from "../../provider/index";
import { DEFAULT_DETACH_TIMEOUT_SECONDS } from "../../provider/providers/device-removal";
import {
    configXml, createImage, diskBySource, liveXml, NOOS, rejectsWith, removeFiles, resetGuest, resetGuestInBackground, RigEnv, rigConnection, rigUp,
    typed, virshLocal, waitFor,
} from "../rig/rig-env";

describe("faults: a guest that ignores hot-unplug (pll-noos), through the providers", function () {
    this.timeout(180_000);
    const disks = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    let env: RigEnv;
    const images: string[] = [];

    before(function () {
        this.timeout(300_000);
        env = rigUp();
        resetGuest(NOOS);
    });

    after(function () {
        this.timeout(120_000);
        resetGuestInBackground(NOOS);
        removeFiles(images);
    });

    it("detach waits its bound, fails with the DeviceStillAttachedError message, the disk stays; after a reboot the rerun completes", async () => {
        const source = createImage(env, "noos-fault");
        images.push(source);
        const inputs: AttachedDiskInputs = { connection: rigConnection(env), domain: NOOS, source, detachTimeout: 6 };
        const { id, outs } = await disks.create(inputs);

        const started = Date.now();
        const error = await rejectsWith(disks.delete(id, outs), DeviceStillAttachedError, [
            new RegExp(`disk ${outs.target} is still attached to the running guest: it did not release it within 6 s`),
            /gone from the persistent config, so it will not come back after a reboot/,
            /domain 'pll-noos'/,
            /Fix: make the guest release it/,
            /The resource stays in the stack until the device is gone/,
        ]);
        const seconds = (Date.now() - started) / 1000;
        assert.ok(seconds >= 6 && seconds < DEFAULT_DETACH_TIMEOUT_SECONDS, `waited its own bound (6 s), not the default (${DEFAULT_DETACH_TIMEOUT_SECONDS} s): ${seconds.toFixed(1)} s`);
        assert.ok(error.message.length < 1200);
        assert.equal(diskBySource(liveXml(NOOS), source)?.target, outs.target, "still in the running domain");
        assert.equal(diskBySource(configXml(NOOS), source), undefined, "gone from the config");

        // refresh: the resource stays (it is still attached); a second delete waits and fails the same way.
        const read = await disks.read(id, outs);
        assert.equal(read.id, id);
        assert.equal(read.props?.attachedLive, true);
        assert.equal(read.props?.attachedConfig, false);
        await rejectsWith(disks.delete(id, read.props as AttachedDiskOutputs), DeviceStillAttachedError);

        virshLocal(["reset", NOOS]);
        await waitFor("the pending unplug to complete on reset", () => diskBySource(liveXml(NOOS), source) === undefined, { timeoutMs: 20_000 });

        // A bound far above what the rerun's reads take: had it waited for an unplug, it would have taken that long.
        const [rerun, bound] = [Date.now(), 60];
        await disks.delete(id, { ...(read.props as AttachedDiskOutputs), detachTimeout: bound });
        assert.ok(Date.now() - rerun < bound * 1000, "nothing left to wait for");
        assert.equal(diskBySource(liveXml(NOOS), source), undefined);
        assert.equal(diskBySource(configXml(NOOS), source), undefined);
        assert.equal((await disks.read(id, outs)).id, undefined, "refresh now drops it");
    });
});
