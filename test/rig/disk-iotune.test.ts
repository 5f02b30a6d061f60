/**
 * AttachedDisk I/O limits (issue 9) on pll-grow1: set at attach, changed, changed by hand (refresh
 * sees it), removed; each live and in the config, the same target and QEMU process throughout, an
 * update in the diff (never a replacement). Bad limits are refused by check before anything changes.
 * Checked with the test's own virsh: dumpxml, dumpxml --inactive, blkdeviotune.
 */
import assert from "node:assert/strict";
import type { AttachedDiskInputs, AttachedDiskOutputs, DiskIoTune } from "../../provider/contract";
import { providers } from "../../provider/index";
import { blkdeviotuneOf, GROW1, iotuneIn, qemuPid } from "./grow-env";
import { configXml, createImage, diskByTarget, domId, liveXml, removeFiles, resetGuest, resetGuestInBackground, RigEnv, rigConnection, rigUp, typed, virshLocal } from "./rig-env";

const NONE = { total_bytes_sec: 0, read_bytes_sec: 0, write_bytes_sec: 0, total_iops_sec: 0, read_iops_sec: 0, write_iops_sec: 0 };

describe("rig: AttachedDisk iotune (pll-grow1)", function () {
    this.timeout(300_000);
    const provider = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    let env: RigEnv;
    let image = "";
    let id = "";
    let outs: AttachedDiskOutputs;
    let domid = "";
    let pid = "";
    const inputs = (iotune?: DiskIoTune): AttachedDiskInputs => ({ connection: rigConnection(env), domain: GROW1, source: image, target: "vdb", iotune });

    before(function () {
        env = rigUp();
        resetGuest(GROW1);
        image = createImage(env, "grow-iotune");
        [domid, pid] = [domId(GROW1), qemuPid(GROW1)];
    });

    after(async function () {
        if (id) await provider.delete(id, outs).catch(() => undefined);
        removeFiles([image]);
        resetGuestInBackground(GROW1);
    });

    /** The limits in the live XML, the persistent config and QEMU are `want` (libvirt's names); same QEMU run. */
    function assertLimits(want: Record<string, number>): void {
        assert.deepEqual(iotuneIn(liveXml(GROW1), "vdb"), want, "live <iotune>");
        assert.deepEqual(iotuneIn(configXml(GROW1), "vdb"), want, "persistent <iotune>");
        assert.deepEqual(blkdeviotuneOf(virshLocal, GROW1, "vdb"), { ...NONE, ...want }, "virsh blkdeviotune");
        assert.equal(domId(GROW1), domid, "same domain id");
        assert.equal(qemuPid(GROW1), pid, "same QEMU process");
    }

    it("conflicting, negative or unknown limits: check refuses them (field and fix), nothing changes", async () => {
        const [live, config] = [liveXml(GROW1), configXml(GROW1)];
        for (const [iotune, pattern] of [
            [{ totalBytesSec: 1000, readBytesSec: 10 }, /iotune: totalBytesSec and readBytesSec cannot both be set .*keep either totalBytesSec or readBytesSec/],
            [{ totalIopsSec: 100, writeIopsSec: 10 }, /iotune: totalIopsSec and writeIopsSec cannot both be set/],
            [{ readIopsSec: -5 }, /iotune: readIopsSec must be a whole number ≥ 0 \(got -5\)/],
            [{ totalBytes: 5 } as DiskIoTune, /iotune: unknown field totalBytes; use totalBytesSec/],
        ] as const) {
            const failures = await provider.checkFailures(inputs(iotune));
            assert.equal(failures.length, 1, JSON.stringify(failures));
            assert.equal(failures[0].property, "iotune");
            assert.match(failures[0].reason, pattern);
        }
        assert.equal(liveXml(GROW1), live);
        assert.equal(configXml(GROW1), config);
    });

    it("set at attach: in the attached XML, live and persistent", async () => {
        ({ id, outs } = await provider.create(inputs({ totalBytesSec: 1048576 })));
        assertLimits({ total_bytes_sec: 1048576 });
        assert.deepEqual(outs.iotune, { totalBytesSec: 1048576 });
    });

    it("changed from a total to read/write IOPS: an update (no replacement), live and in the config", async () => {
        const next = { readIopsSec: 100, writeIopsSec: 50 };
        const diff = await provider.diff(id, outs, inputs(next));
        assert.equal(diff.changes, true);
        assert.deepEqual(diff.replaces, []);
        const applied = await provider.apply(id, outs, inputs(next));
        assert.equal(applied.replaced, false);
        outs = applied.outs;
        assertLimits({ read_iops_sec: 100, write_iops_sec: 50 });
        assert.deepEqual(outs.iotune, next);
    });

    it("changed by hand (blkdeviotune): refresh reports it, and the next update puts it back", async () => {
        virshLocal(["blkdeviotune", GROW1, "vdb", "--read-iops-sec", "7", "--write-iops-sec", "0", "--live", "--config"]);
        const read = await provider.read(id, outs);
        assert.deepEqual(read.props?.iotune, { readIopsSec: 7 });
        const wanted = inputs({ readIopsSec: 100, writeIopsSec: 50 });
        assert.deepEqual((await provider.diff(id, read.props as AttachedDiskOutputs, wanted)).replaces, []);
        outs = (await provider.apply(id, read.props as AttachedDiskOutputs, wanted)).outs;
        assertLimits({ read_iops_sec: 100, write_iops_sec: 50 });
    });

    it("removed: every limit cleared live and in the config; the disk stays", async () => {
        const applied = await provider.apply(id, outs, inputs(undefined));
        assert.equal(applied.replaced, false);
        outs = applied.outs;
        assertLimits({});
        assert.ok(diskByTarget(liveXml(GROW1), "vdb"), "still attached live");
        assert.equal(outs.iotune, undefined);
        assert.equal((await provider.diff(id, outs, inputs(undefined))).changes, false, "no change left");
    });

    it("delete detaches", async () => {
        await provider.delete(id, outs);
        id = "";
        assert.equal(diskByTarget(liveXml(GROW1), "vdb"), undefined);
        assert.equal(diskByTarget(configXml(GROW1), "vdb"), undefined);
    });
});
