import assert from "node:assert/strict";
import type { DiskBus } from "../../provider/contract";
import { COLD_PLUG_BUSES, nextFreeTarget, TARGET_PREFIX, targetFitsBus } from "../../provider/device-targets";

const LETTERS = "abcdefghijklmnopqrstuvwxyz".split("");

describe("device-targets: nextFreeTarget", () => {
    it("starts at vda on an empty virtio bus", () => {
        assert.equal(nextFreeTarget("virtio", new Set()), "vda");
    });

    it("vda taken → vdb", () => {
        assert.equal(nextFreeTarget("virtio", new Set(["vda"])), "vdb");
    });

    it("fills the first gap", () => {
        assert.equal(nextFreeTarget("virtio", new Set(["vda", "vdc", "vdd"])), "vdb");
        assert.equal(nextFreeTarget("virtio", new Set(["vdb"])), "vda");
    });

    it("ignores names of other buses", () => {
        assert.equal(nextFreeTarget("virtio", new Set(["sda", "hda", "hdc"])), "vda");
        assert.equal(nextFreeTarget("scsi", new Set(["vda", "vdb"])), "sda");
    });

    it("goes a..z, then aa, ab", () => {
        const az = new Set(LETTERS.map((l) => `vd${l}`));
        assert.equal(nextFreeTarget("virtio", new Set([...az].filter((t) => t !== "vdz"))), "vdz");
        assert.equal(nextFreeTarget("virtio", az), "vdaa");
        assert.equal(nextFreeTarget("virtio", new Set([...az, "vdaa"])), "vdab");
    });

    it("goes zz → aaa like libvirt", () => {
        const names = new Set<string>(LETTERS.map((l) => `sd${l}`));
        for (const a of LETTERS) for (const b of LETTERS) names.add(`sd${a}${b}`);
        assert.equal(names.size, 26 + 26 * 26);
        assert.equal(nextFreeTarget("scsi", names), "sdaaa");
    });

    it("uses sd for scsi and sata, hd for ide", () => {
        assert.equal(nextFreeTarget("scsi", new Set()), "sda");
        assert.equal(nextFreeTarget("sata", new Set(["sda"])), "sdb");
        assert.equal(nextFreeTarget("ide", new Set()), "hda");
        assert.equal(nextFreeTarget("ide", new Set(["hda", "hdb", "hdc"])), "hdd");
    });

    it("scsi and sata share the sd namespace", () => {
        assert.equal(TARGET_PREFIX.scsi, TARGET_PREFIX.sata);
        assert.equal(nextFreeTarget("sata", new Set(["sda", "sdb"])), "sdc");
    });
});

describe("device-targets: targetFitsBus", () => {
    const fits: Array<[string, DiskBus]> = [["vda", "virtio"], ["vdaa", "virtio"], ["sdb", "scsi"], ["sdb", "sata"], ["hdc", "ide"]];
    for (const [target, bus] of fits) {
        it(`${target} fits ${bus}`, () => assert.equal(targetFitsBus(target, bus), true));
    }
    const misfits: Array<[string, DiskBus]> = [
        ["sdb", "virtio"], ["vdb", "scsi"], ["hdc", "sata"], ["vdb", "ide"], ["vd", "virtio"], ["vdB", "virtio"],
        ["vdb1", "virtio"], ["xvda", "virtio"], ["vdb ", "virtio"], ["", "virtio"],
    ];
    for (const [target, bus] of misfits) {
        it(`${JSON.stringify(target)} does not fit ${bus}`, () => assert.equal(targetFitsBus(target, bus), false));
    }

    it("nextFreeTarget always returns a name that fits its bus", () => {
        for (const bus of ["virtio", "scsi", "sata", "ide"] as const) {
            assert.equal(targetFitsBus(nextFreeTarget(bus, new Set()), bus), true);
        }
    });

    it("only sata and ide are cold-plug buses", () => {
        assert.deepEqual([...COLD_PLUG_BUSES].sort(), ["ide", "sata"]);
    });
});
