/**
 * AttachedDisk `size` (issue 9) on pll-grow1: images created from nothing (raw and qcow2), grown
 * live (same target, domain id and QEMU process; domblkinfo, the image and the guest's own view of
 * its block device agree), a shrink refused with the XML byte-identical, a resize made by hand seen
 * by refresh, growth while shut off going to the image only, deleteImage removing only an image
 * this resource created, and a block device (a loop device) that must already be that big.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, truncateSync } from "node:fs";
import { join } from "node:path";
import type { AttachedDiskInputs, AttachedDiskOutputs } from "../../provider/contract";
import { InputError, providers } from "../../provider/index";
import { GROW1, guestView, qemuPid } from "./grow-env";
import {
    configXml, createImage, diskByTarget, domId, domState, imageInfo, liveXml, missingPath, rejectsWith, removeFiles, resetGuest, resetGuestInBackground, RigEnv,
    rigConnection, rigUp, typed, virshLocal, waitFor,
} from "./rig-env";

const MiB = 1024 * 1024;

function capacity(target: string): number {
    return Number(/^Capacity:\s*(\d+)/m.exec(virshLocal(["domblkinfo", GROW1, target]))?.[1]);
}

describe("rig: AttachedDisk size (pll-grow1)", function () {
    this.timeout(300_000);
    const provider = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    let env: RigEnv;
    const files: string[] = [];
    const managed = new Map<string, { id: string; outs: AttachedDiskOutputs }>();
    let domid = "";
    let pid = "";
    let loop = "";
    const disk = (source: string, target: string, fields: Partial<AttachedDiskInputs>): AttachedDiskInputs =>
        ({ connection: rigConnection(env), domain: GROW1, source, target, ...fields });

    before(function () {
        env = rigUp();
        resetGuest(GROW1);
        [domid, pid] = [domId(GROW1), qemuPid(GROW1)];
    });

    after(async function () {
        for (const { id, outs } of managed.values()) await provider.delete(id, outs).catch(() => undefined);
        if (loop) execFileSync("losetup", ["-d", loop]);
        removeFiles(files);
        resetGuestInBackground(GROW1);
    });

    /** The guest's own view: `count` virtio disks of this many 512-byte sectors (its names are its own: vda, vdb…). */
    async function guestSees(sectors: number, count = 1): Promise<void> {
        const seen = () => Object.entries(guestView(env, GROW1)).filter(([k, v]) => k.startsWith("vd") && v === sectors).length;
        await waitFor(`the guest to see ${count} ${sectors * 512 / MiB} MiB virtio disk(s)`, () => seen() === count,
            { describe: () => JSON.stringify(guestView(env, GROW1)) });
    }

    it("bad sizes: check refuses them, naming the field and the fix", async () => {
        const source = missingPath(env, "grow-bad");
        for (const [size, pattern] of [
            ["512KiB", /size: "512KiB" is 524288 bytes, under 1 MiB: most likely a unit mistake/],
            [0.5, /size: 0.5 is 524288 bytes, under 1 MiB/],
            ["64", /size: "64" needs a unit/],
            ["1048577B", /size: "1048577B" is 1048577 bytes, not a whole number of 512-byte sectors; write "1049088B"/],
        ] as const) {
            const failures = await provider.checkFailures(disk(source, "vdb", { size }));
            assert.deepEqual(failures.map((f) => f.property), ["size"]);
            assert.match(failures[0].reason, pattern);
        }
        assert.equal(existsSync(source), false);
    });

    it("a missing directory or a missing block device: refused before anything changes", async () => {
        const [live, config] = [liveXml(GROW1), configXml(GROW1)];
        const noDir = join(env.PLL_IMAGES, `no-such-dir-${process.pid}`, "d.img");
        await rejectsWith(provider.create(disk(noDir, "vdb", { size: "64MiB" })), InputError,
            [/source .*d\.img does not exist, and its directory .*no-such-dir-\d+ does not exist either/, /Fix: create the directory on the host first \(mkdir -p /]);
        await rejectsWith(provider.create(disk(missingPath(env, "grow-blk"), "vdb", { size: "64MiB", sourceType: "block" })), InputError,
            [/size creates only image files, not block devices/, /Fix: create the block device first/]);
        assert.equal(liveXml(GROW1), live);
        assert.equal(configXml(GROW1), config);
    });

    for (const [format, target] of [["raw", "vdb"], ["qcow2", "vdc"]] as const) {
        it(`created from nothing at 64MiB (${format}), attached live`, async () => {
            const source = missingPath(env, `grow-${format}`);
            files.push(source);
            const created = await provider.create(disk(source, target, { size: "64MiB", format, deleteImage: format === "qcow2" }));
            managed.set(target, created);
            assert.deepEqual(imageInfo(source), { format, virtualSize: 64 * MiB });
            assert.equal(capacity(target), 64 * MiB, "domblkinfo");
            assert.equal(created.outs.imageCreated, true);
            assert.equal(created.outs.capacityBytes, 64 * MiB);
            assert.ok(diskByTarget(liveXml(GROW1), target) && diskByTarget(configXml(GROW1), target), "attached live and in the config");
            await guestSees(64 * MiB / 512, managed.size);
        });
    }

    it("grown 64MiB → 128MiB live: an update, same target, domain id and QEMU process; QEMU, the image and the guest agree", async () => {
        const { id, outs } = managed.get("vdb")!;
        const news = disk(outs.source, "vdb", { size: "128MiB", format: "raw" });
        const diff = await provider.diff(id, outs, news);
        assert.deepEqual(diff.replaces, []);
        const applied = await provider.apply(id, outs, news);
        assert.equal(applied.replaced, false);
        managed.set("vdb", applied);
        assert.equal(applied.outs.capacityBytes, 128 * MiB);
        assert.equal(applied.outs.target, "vdb");
        assert.equal(capacity("vdb"), 128 * MiB, "domblkinfo");
        assert.equal(imageInfo(outs.source).virtualSize, 128 * MiB, "the image file");
        assert.equal(domId(GROW1), domid, "same domain id");
        assert.equal(qemuPid(GROW1), pid, "same QEMU process");
        await guestSees(128 * MiB / 512);
        await guestSees(64 * MiB / 512);
    });

    it("a shrink: check refuses it naming both sizes; update refuses it too; the XML stays byte-identical", async () => {
        const { id, outs } = managed.get("vdb")!;
        const [live, config] = [liveXml(GROW1), configXml(GROW1)];
        const news = disk(outs.source, "vdb", { size: "64MiB", format: "raw" });
        const checked = await providers.attachedDisk.check!(disk(outs.source, "vdb", { size: "128MiB", format: "raw" }), news);
        assert.deepEqual(checked.failures?.map((f) => f.property), ["size"]);
        assert.match(checked.failures?.[0].reason ?? "", /size: 128MiB → 64MiB would shrink the disk, and a shrink loses data; keep size at 128MiB or more/);
        await rejectsWith(provider.update(id, outs, news), InputError,
            [/size 64MiB is smaller than the disk's 128MiB: a shrink loses data, and nothing was changed/, /device disk vdb/, /Fix: keep size at 128MiB or more/]);
        assert.equal(liveXml(GROW1), live);
        assert.equal(configXml(GROW1), config);
        assert.equal(capacity("vdb"), 128 * MiB);
    });

    it("a blockresize made by hand: refresh reports the capacity and the size", async () => {
        const { id, outs } = managed.get("vdb")!;
        virshLocal(["blockresize", GROW1, "vdb", "192M"]);
        const read = await provider.read(id, outs);
        assert.equal(read.props?.capacityBytes, 192 * MiB);
        assert.equal(read.props?.size, "192MiB");
        const props = read.props!;
        // Taking the new size into the program: no change left.
        assert.equal((await provider.diff(id, props, disk(outs.source, "vdb", { size: "192MiB", format: "raw" }))).changes, false);
        managed.set("vdb", { id, outs: props });
    });

    it("a block device: must already be that big (refused with the lvextend hint), then grown live once it is", async () => {
        const backing = createImage(env, "grow-loop", "raw", "64M");
        files.push(backing);
        loop = execFileSync("losetup", ["-f", "--show", backing], { encoding: "utf8" }).trim();
        const [live, config] = [liveXml(GROW1), configXml(GROW1)];
        await rejectsWith(provider.create(disk(loop, "vdd", { size: "128MiB" })), InputError,
            [new RegExp(`size 128MiB is more than the block device ${loop} holds \\(64MiB\\)`), /Fix: grow the device itself first \(e\.g\. lvextend -L 128MiB/]);
        assert.equal(liveXml(GROW1), live);
        assert.equal(configXml(GROW1), config);
        const created = await provider.create(disk(loop, "vdd", { size: "64MiB" }));
        managed.set("vdd", created);
        assert.equal(created.outs.sourceType, "block");
        assert.equal(created.outs.capacityBytes, 64 * MiB);
        // The operator grows the device; size then tells QEMU, live.
        truncateSync(backing, 128 * MiB);
        execFileSync("losetup", ["-c", loop]);
        const applied = await provider.apply(created.id, created.outs, disk(loop, "vdd", { size: "128MiB" }));
        assert.equal(applied.replaced, false);
        managed.set("vdd", applied);
        assert.equal(capacity("vdd"), 128 * MiB);
        assert.equal(domId(GROW1), domid, "same domain id");
        await guestSees(128 * MiB / 512);
    });

    it("shut off: growth goes to the image (qemu-img resize), config only", async () => {
        const { id, outs } = managed.get("vdc")!;
        virshLocal(["destroy", GROW1]);
        await waitFor("pll-grow1 shut off", () => domState(GROW1) === "shut off");
        const applied = await provider.apply(id, outs, disk(outs.source, "vdc", { size: "96MiB", format: "qcow2", deleteImage: true }));
        assert.equal(applied.replaced, false);
        managed.set("vdc", applied);
        assert.equal(imageInfo(outs.source).virtualSize, 96 * MiB, "the image file");
        assert.equal(applied.outs.capacityBytes, 96 * MiB);
        assert.equal(domState(GROW1), "shut off", "still shut off");
    });

    it("delete: deleteImage removes only an image this resource created, after the detach", async () => {
        const mine = managed.get("vdc")!;
        await provider.delete(mine.id, mine.outs);
        managed.delete("vdc");
        assert.equal(diskByTarget(configXml(GROW1), "vdc"), undefined);
        assert.equal(existsSync(mine.outs.source), false, "the qcow2 image this resource created is gone");
        // An image it did not create stays, deleteImage or not.
        const theirs = createImage(env, "grow-theirs", "raw", "64M");
        files.push(theirs);
        const adopted = await provider.create(disk(theirs, "vde", { size: "64MiB", deleteImage: true }));
        assert.equal(adopted.outs.imageCreated, false);
        await provider.delete(adopted.id, adopted.outs);
        assert.equal(existsSync(theirs), true, "an image the resource did not create is kept");
        // Created, but deleteImage not set: kept.
        const raw = managed.get("vdb")!;
        await provider.delete(raw.id, raw.outs);
        managed.delete("vdb");
        assert.equal(existsSync(raw.outs.source), true, "kept without deleteImage");
    });
});
