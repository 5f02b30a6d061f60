/**
 * The persistent config cannot be written while the live change succeeds: the domain's config file
 * /etc/libvirt/qemu/pll-fault3.xml made immutable (`chattr +i`), so libvirt's final rename fails
 * ("cannot rename file … Operation not permitted") after the device went live. The provider must say
 * which half landed, and a rerun (file writable again) must add the missing half. Through the
 * providers; the engine version is in faults-engine.test.ts. Guest pll-fault3.
 */
import assert from "node:assert/strict";
import type { AttachedDiskInputs, AttachedDiskOutputs } from "../../provider/contract";
import { providers, VirshError } from "../../provider/index";
import {
    createImage, diskCount, disksIn, liveXml, rejectsWith, removeFiles, resetGuest, resetGuestInBackground, rigConnection, RigEnv, rigUp, typed,
} from "../rig/rig-env";
import { convergedViaProviders, setConfigWritable } from "./fault-env";

const GUEST = "pll-fault3";
const configWritable = (writable: boolean): void => setConfigWritable(GUEST, writable);

describe("faults: live change succeeds, config write fails (pll-fault3, config made immutable)", function () {
    this.timeout(180_000);
    const disks = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    let env: RigEnv;
    const images: string[] = [];
    before(function () {
        this.timeout(300_000);
        env = rigUp();
        resetGuest(GUEST);
    });

    afterEach(() => configWritable(true));

    after(function () {
        this.timeout(120_000);
        configWritable(true);
        resetGuestInBackground(GUEST);
        removeFiles(images);
    });

    it("attach: reported as 'attached to the running domain but not in its persistent config' with libvirt's reason; the rerun adds the config half", async () => {
        const source = createImage(env, "config-ro");
        images.push(source);
        const inputs: AttachedDiskInputs = { connection: rigConnection(env), domain: GUEST, source };
        configWritable(false);
        const error = await rejectsWith(disks.create(inputs), VirshError, [
            /virsh attach-device failed \(exit 1\): disk vd[a-z]+ is attached to the running domain but not in its persistent config/,
            /virsh said: .*cannot rename file '\/etc\/libvirt\/qemu\/pll-fault3\.xml\.new'.*Operation not permitted/s,
            /domain 'pll-fault3'/,
            /Fix: fix what virsh reports .*then run pulumi up again: it adds the missing half/,
        ]);
        assert.deepEqual(diskCount(GUEST, source), { live: 1, config: 0 }, `as reported: ${error.summary}`);

        configWritable(true);
        const { id, outs } = await disks.create(inputs);
        assert.deepEqual(diskCount(GUEST, source), { live: 1, config: 1 }, "rerun added the config half, no second disk");
        assert.equal(disksIn(liveXml(GUEST)).find((d) => d.source === source)?.target, outs.target);
        await convergedViaProviders(disks, id, outs, inputs);
        await disks.delete(id, outs);
        assert.deepEqual(diskCount(GUEST, source), { live: 0, config: 0 });
    });

    it("detach: the config detach fails first, so nothing changed live; reported with the config hint; the rerun detaches both", async () => {
        const source = createImage(env, "config-ro-detach");
        images.push(source);
        const inputs: AttachedDiskInputs = { connection: rigConnection(env), domain: GUEST, source };
        const { id, outs } = await disks.create(inputs);
        configWritable(false);
        await rejectsWith(disks.delete(id, outs), VirshError, [
            /virsh detach-disk failed \(exit 1\)/, /cannot rename file/, new RegExp(`device disk ${outs.target}`),
            /Fix: libvirt could not write the domain's persistent config/,
        ]);
        assert.deepEqual(diskCount(GUEST, source), { live: 1, config: 1 }, "nothing changed");
        await convergedViaProviders(disks, id, outs, inputs);
        configWritable(true);
        await disks.delete(id, outs);
        assert.deepEqual(diskCount(GUEST, source), { live: 0, config: 0 });
        assert.equal((await disks.read(id, outs)).id, undefined);
    });
});
