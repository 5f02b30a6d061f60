/**
 * A device put by hand at a resource's target (its own detached first) is never changed or detached
 * by that resource: an update or a move is refused before any command, a delete leaves it attached,
 * and a CD-ROM's read no longer finds its drive. pll-guest1; checked with local virsh.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import type { AttachedCdromInputs, AttachedCdromOutputs, AttachedDiskInputs, AttachedDiskOutputs } from "../../provider/contract";
import { InputError, providers } from "../../provider/index";
import {
    configXml, createImage, createIso, diskByTarget, GUEST1, liveXml, rejectsWith, removeFiles, resetGuest, resetGuestInBackground, RigEnv,
    rigConnection, rigUp, typed, virshLocal, waitFor,
} from "./rig-env";

describe("rig: a device put by hand at a resource's target (pll-guest1)", function () {
    this.timeout(180_000);
    let env: RigEnv;
    const files: string[] = [];

    before(function () {
        this.timeout(300_000);
        env = rigUp();
        resetGuest(GUEST1);
    });

    after(() => {
        removeFiles(files);
        resetGuestInBackground(GUEST1);
    });

    /** Detaches what is at `target` by hand (live and config) and attaches the image `theirs` there as a data disk. */
    async function swapByHand(target: string, bus: string, theirs: string): Promise<void> {
        virshLocal(["detach-disk", GUEST1, target, "--persistent"]);
        await waitFor(`${target} gone from the live XML`, () => diskByTarget(liveXml(GUEST1), target) === undefined, { timeoutMs: 30_000 });
        virshLocal(["attach-disk", GUEST1, theirs, target, "--targetbus", bus, "--subdriver", "raw", "--persistent"]);
    }

    /** The image `theirs` is a data disk at `target`, live and in the config, with no I/O limits. */
    function assertTheirsAttached(target: string, theirs: string): void {
        for (const [where, xml] of [["live", liveXml(GUEST1)], ["config", configXml(GUEST1)]] as const) {
            const disk = diskByTarget(xml, target);
            assert.ok(disk, `${where}: nothing at ${target}: their disk was detached`);
            assert.equal(disk.device, "disk", where);
            assert.equal(disk.source, theirs, `${where}: source at ${target}`);
            assert.doesNotMatch(xml.slice(xml.indexOf(theirs)).split("</disk>")[0], /<iotune>/, `${where}: their disk got I/O limits`);
        }
    }

    it("AttachedCdrom (a hot-plugged drive): a data disk at its target is refused by update and left attached by delete", async () => {
        const cdroms = typed<AttachedCdromInputs, AttachedCdromOutputs>(providers.attachedCdrom);
        const [iso1, iso2, theirs] = [createIso(env, "stranger-cd1"), createIso(env, "stranger-cd2"), createImage(env, "stranger-theirs-cd")];
        files.push(iso1, iso2, theirs);
        const inputs: AttachedCdromInputs = { connection: rigConnection(env), domain: GUEST1, source: iso1 };
        const { id, outs } = await cdroms.create(inputs);
        assert.equal(outs.ownsDrive, true);
        await swapByHand(outs.target, outs.bus, theirs);

        await rejectsWith(cdroms.update(id, outs, { ...inputs, source: iso2 }), InputError,
            [new RegExp(`target ${outs.target} of domain '${GUEST1}' holds a disk \\(${theirs}\\) in the live XML and the persistent config, not a CD-ROM drive`),
                new RegExp(`Fix: .*virsh detach-disk ${GUEST1} ${outs.target} --live --config`)]);
        assertTheirsAttached(outs.target, theirs);

        await cdroms.delete(id, outs);
        assertTheirsAttached(outs.target, theirs);
        assert.equal((await cdroms.read(id, outs)).id, undefined, "refresh finds no CD-ROM drive at the target: it drops the resource");
    });

    it("AttachedDisk: another image at its target is refused by an update and by a move (nothing copied, no image freed) and left attached by delete", async () => {
        const disks = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
        const [ours, theirs] = [createImage(env, "stranger-ours"), createImage(env, "stranger-theirs")];
        files.push(ours, theirs);
        const inputs: AttachedDiskInputs = { connection: rigConnection(env), domain: GUEST1, source: ours };
        const { id, outs } = await disks.create(inputs);
        await swapByHand(outs.target, outs.bus, theirs);

        const refusal = [new RegExp(`target ${outs.target} of domain '${GUEST1}' holds a disk \\(${theirs}\\) in the live XML and the persistent config, not this resource's disk ${ours}`),
            new RegExp(`Fix: .*virsh detach-disk ${GUEST1} ${outs.target} --live --config`)];
        await rejectsWith(disks.update(id, outs, { ...inputs, iotune: { totalBytesSec: 10_485_760 } }), InputError, refusal);
        assertTheirsAttached(outs.target, theirs);

        // A move would copy their disk, pivot the guest onto the copy and free (here: delete) ours.
        const dest = `${ours}.moved`;
        files.push(dest);
        await rejectsWith(disks.update(id, outs, { ...inputs, source: dest, afterMove: "delete" }), InputError, refusal);
        assertTheirsAttached(outs.target, theirs);
        assert.equal(existsSync(dest), false, "the move created its destination");
        assert.equal(existsSync(ours), true, "the move freed the state's image");

        await disks.delete(id, outs);
        assertTheirsAttached(outs.target, theirs);
    });
});
