import assert from "node:assert/strict";
import { shrinkProblem } from "../../provider/providers/disk-size";
import { formatBytes, parseDiskSizeBytes } from "../../provider/units";

const MiB = 1024 * 1024;

describe("disk sizes", () => {
    it("read like memory sizes (a number is MiB), plus byte counts", () => {
        assert.equal(parseDiskSizeBytes("64MiB", "size"), 64 * MiB);
        assert.equal(parseDiskSizeBytes("20GiB", "size"), 20 * 1024 * MiB);
        assert.equal(parseDiskSizeBytes(128, "size"), 128 * MiB);
        assert.equal(parseDiskSizeBytes("1049088B", "size"), 1049088);
        assert.equal(parseDiskSizeBytes("1.5MiB", "size"), 1.5 * MiB);
    });

    it("refuse what is most likely a mistake, naming the field and the fix", () => {
        assert.throws(() => parseDiskSizeBytes("512KiB", "size"), /size: "512KiB" is 524288 bytes, under 1 MiB: most likely a unit mistake \(write "64MiB"/);
        assert.throws(() => parseDiskSizeBytes(0.5, "size"), /size: 0.5 is 524288 bytes, under 1 MiB/);
        assert.throws(() => parseDiskSizeBytes("64", "size"), /size: "64" needs a unit/);
        assert.throws(() => parseDiskSizeBytes("1000000B", "size"), /under 1 MiB/);
        assert.throws(() => parseDiskSizeBytes("1048577B", "size"), /size: "1048577B" is 1048577 bytes, not a whole number of 512-byte sectors; write "1049088B"/);
        assert.throws(() => parseDiskSizeBytes("1.0001MiB", "size"), /not a whole number of 512-byte sectors/);
        assert.throws(() => parseDiskSizeBytes("5XB", "size"), /unknown unit "XB"/);
    });

    it("format exactly", () => {
        assert.equal(formatBytes(128 * MiB), "128MiB");
        assert.equal(formatBytes(1536 * 1024), "1536KiB");
        assert.equal(formatBytes(1049088), "1049088B");
    });

    it("check refuses a shrink against the last inputs, naming both sizes; growth and first sizes pass", () => {
        assert.match(shrinkProblem({ size: "128MiB" }, { size: "64MiB" } as never) ?? "", /128MiB → 64MiB would shrink the disk, and a shrink loses data; keep size at 128MiB or more/);
        assert.equal(shrinkProblem({ size: "64MiB" }, { size: 128 } as never), undefined);
        assert.equal(shrinkProblem({}, { size: "64MiB" } as never), undefined);
        assert.equal(shrinkProblem({ size: "1GiB" }, { size: 1024 } as never), undefined);
    });
});
