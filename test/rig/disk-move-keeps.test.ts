/**
 * Issue 16, what a move keeps (a throwaway copy of pll-guest2 without an OS, pll-mv-keeps):
 * the disk's I/O limits, serial, cache and io mode are in both XMLs after a live move, and QEMU
 * still applies the limits (blkdeviotune); a size and a source changed together do both, the copy
 * first and the grow on the copy, so the data is there at the new size and the old image is
 * untouched at its own.
 */
import assert from "node:assert/strict";
import { blkdeviotuneOf, iotuneIn } from "./grow-env";
import { holdsPattern, MiB, MoveFixture, on, writePattern } from "./disk-move-env";
import { VirshError } from "../../provider/index";
import { configXml, diskByTarget, imageInfo, liveXml, rejectsWith, virshLocal } from "./rig-env";

const DOMAIN = "pll-mv-keeps";

describe("rig: a live move keeps the disk's settings, and a size changed with it (pll-mv-keeps)", function () {
    this.timeout(300_000);
    const kit = new MoveFixture(DOMAIN).hooks();
    const { provider } = kit;

    it("iotune, serial, cache and io survive a live raw → qcow2 move: in the live XML, the config and QEMU's own limits", async () => {
        const old = kit.image("keeps", 16);
        const settings = { iotune: { totalIopsSec: 500, readBytesSec: 4 * MiB }, serial: "PLL-MV-KEEP", cache: "none", io: "native" } as const;
        const created = await provider.create(kit.disk(old, settings));
        const target = created.outs.target;
        const limits = { total_iops_sec: 500, read_bytes_sec: 4 * MiB };
        assert.deepEqual(iotuneIn(liveXml(DOMAIN), target), limits, "the limits before the move (what the test compares with)");
        const dest = kit.nowhere("keeps-dest", "qcow2");
        const moved = await provider.apply(created.id, created.outs, kit.disk(dest, { ...settings, format: "qcow2" }));
        assert.equal(moved.replaced, false);
        assert.deepEqual(kit.place(target), on(dest, "qcow2"));
        for (const [half, xml] of [["live", liveXml(DOMAIN)], ["config", configXml(DOMAIN)]]) {
            const disk = diskByTarget(xml, target);
            assert.deepEqual(iotuneIn(xml, target), limits, `${half} <iotune>`);
            assert.match(disk?.xml ?? "", /<serial>PLL-MV-KEEP<\/serial>/, `${half} <serial>`);
            assert.deepEqual([disk?.cache, disk?.io], ["none", "native"], `${half} cache and io`);
        }
        const qemu = blkdeviotuneOf(virshLocal, DOMAIN, target);
        assert.deepEqual([qemu.total_iops_sec, qemu.read_bytes_sec], [500, 4 * MiB], "QEMU applies the limits on the new image");
        assert.deepEqual([moved.outs.iotune, moved.outs.serial, moved.outs.cache, moved.outs.io], [settings.iotune, settings.serial, "none", "native"]);
        assert.equal((await provider.diff(moved.id, moved.outs, kit.disk(dest, { ...settings, format: "qcow2" }))).changes, false, "nothing left to change");
    });

    it("size 16 → 32 MiB with a new source: copied at 16, then the copy grown; the data at the new size, the old image untouched at 16", async () => {
        const old = kit.image("grow", 16);
        writePattern(old);
        const created = await provider.create(kit.disk(old, { size: "16MiB" }));
        const target = created.outs.target;
        const dest = kit.nowhere("grow-dest");
        const news = kit.disk(dest, { size: "32MiB" });
        const diff = await provider.diff(created.id, created.outs, news);
        assert.deepEqual([diff.changes, diff.replaces], [true, []], "an update of source and size");
        const moved = await provider.apply(created.id, created.outs, news);
        assert.equal(moved.replaced, false);
        assert.deepEqual(kit.place(target), on(dest));
        assert.match(virshLocal(["domblkinfo", DOMAIN, target]), new RegExp(`^Capacity:\\s*${32 * MiB}$`, "m"), "QEMU sees 32 MiB");
        assert.deepEqual([imageInfo(dest).virtualSize, imageInfo(old).virtualSize], [32 * MiB, 16 * MiB], "the copy grew; the old image kept its size");
        assert.ok(holdsPattern(dest, "raw"), "the data is in the grown copy");
        assert.ok(holdsPattern(dest, "raw", { byte: "0", offset: 16 * MiB, length: 16 * MiB }), "the grown part reads as zeros");
        assert.ok(holdsPattern(old, "raw"), "the old image is untouched");
        assert.equal(moved.outs.capacityBytes, 32 * MiB);
    });

    it("review finding 10: I/O limits that QEMU refuses after the move fail the update, and the error carries the moved outputs for the engine to store", async () => {
        const old = kit.image("then-fails", 16);
        writePattern(old);
        const created = await provider.create(kit.disk(old));
        const dest = kit.nowhere("then-fails-dest", "qcow2");
        // QEMU caps a limit at 1e15 per second; the check lets any whole number through, so only the host refuses it.
        const news = kit.disk(dest, { format: "qcow2", iotune: { totalBytesSec: 2e15 } });
        const error = await rejectsWith(provider.update(created.id, created.outs, news), VirshError,
            [new RegExp(`disk ${created.outs.target} of domain '${DOMAIN}' was moved to ${dest} \\(the state now names it\\); then: .*blkdeviotune`)]);
        const stored = error as VirshError & { id?: string; properties?: Record<string, unknown>; reasons?: string[] };
        assert.equal(stored.id, created.id, "an initialization failure: the engine stores its properties");
        assert.deepEqual([stored.properties?.source, stored.properties?.format, stored.properties?.imageCreated], [dest, "qcow2", true], "the outputs name the new source");
        assert.deepEqual(stored.reasons, [error.message]);
        assert.deepEqual(kit.place(created.outs.target), on(dest, "qcow2"), "the disk was moved");
        assert.ok(holdsPattern(dest, "qcow2"));
    });
});
