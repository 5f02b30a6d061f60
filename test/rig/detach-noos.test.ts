/**
 * The detach that does not complete (pll-noos: no OS, never acknowledges an ACPI unplug).
 * `virsh detach-disk` exits 0 there while the disk stays in the running domain (RIG.md); the
 * provider must say so (DeviceStillAttachedError) and keep the resource (read still finds it).
 */
import assert from "node:assert/strict";
import type { AttachedDiskInputs, AttachedDiskOutputs } from "../../provider/contract";
import { DeviceStillAttachedError, providers } from "../../provider/index";
import {
    configXml, createImage, diskBySource, diskByTarget, liveXml, NOOS, rejectsWith, removeFiles, resetGuest, RigEnv,
    rigConnection, rigUp, typed,
} from "./rig-env";

describe("rig: detach that does not complete (pll-noos)", function () {
    this.timeout(180_000);
    const provider = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    let env: RigEnv;
    const images: string[] = [];

    before(function () {
        this.timeout(300_000);
        env = rigUp();
        resetGuest(NOOS);
    });

    after(function () {
        this.timeout(120_000);
        // The disk is still in the running domain: put pll-noos back to its baseline.
        resetGuest(NOOS);
        removeFiles(images);
    });

    it("delete with detachTimeout 5 rejects with DeviceStillAttachedError; live keeps the disk, config lost it; read still returns it", async () => {
        const source = createImage(env, "noos");
        images.push(source);
        const { id, outs } = await provider.create({ connection: rigConnection(env), domain: NOOS, source, detachTimeout: 5 });
        assert.equal(outs.attachedLive, true);
        assert.equal(outs.attachedConfig, true);
        assert.equal(diskByTarget(liveXml(NOOS), outs.target)?.source, source, "attached live");
        assert.equal(diskByTarget(configXml(NOOS), outs.target)?.source, source, "attached in config");

        const started = Date.now();
        const error = await rejectsWith(provider.delete(id, outs), DeviceStillAttachedError, [
            new RegExp(`disk ${outs.target} is still attached to the running guest`),
            /gone from the persistent config/,
            /Fix: /,
        ]);
        assert.match(error.message, new RegExp(`domain '${NOOS}'`));
        const seconds = (Date.now() - started) / 1000;
        assert.ok(seconds >= 5, `the provider waited its bound (${seconds.toFixed(1)} s)`);

        assert.equal(diskBySource(liveXml(NOOS), source)?.target, outs.target, "still in the live XML");
        assert.equal(diskBySource(configXml(NOOS), source), undefined, "gone from the persistent config");

        const read = await provider.read(id, outs);
        assert.equal(read.id, id, "read still returns it: the resource stays in the stack");
        assert.equal(read.props?.attachedLive, true);
        assert.equal(read.props?.attachedConfig, false);
        assert.equal(read.props?.target, outs.target);
    });
});
