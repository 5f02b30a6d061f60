import assert from "node:assert/strict";
import { formatKiB, KIB_PER_UNIT, MINIMUM_MEMORY_KIB, parseMemoryKiB } from "../../provider/units";

const MiB = 1024;
const GiB = 1024 * 1024;

describe("units: parseMemoryKiB", () => {
    const accepted: Array<[string | number, number]> = [
        ["512MiB", 512 * MiB],
        ["4GiB", 4 * GiB],
        ["4G", 4 * GiB],
        ["4GB", 4 * GiB],
        ["4gib", 4 * GiB],
        [" 4 GiB ", 4 * GiB],
        ["1.5GiB", 1.5 * GiB],
        ["1TiB", 1024 * GiB],
        ["65536KiB", 64 * MiB],
        ["64MiB", 64 * MiB],
        [512, 512 * MiB],
        [4096, 4 * GiB],
        [64, 64 * MiB],
        [1536.5, Math.round(1536.5 * 1024)],
    ];
    for (const [input, kib] of accepted) {
        it(`reads ${JSON.stringify(input)} as ${kib} KiB`, () => {
            assert.equal(parseMemoryKiB(input, "memory"), kib);
        });
    }

    it("treats a plain number as MiB, never KiB", () => {
        assert.equal(parseMemoryKiB(1024, "memory"), 1024 * 1024);
        assert.notEqual(parseMemoryKiB(1024, "memory"), 1024);
    });

    it("refuses a bare number in a string (virsh would read it as KiB)", () => {
        assert.throws(() => parseMemoryKiB("512", "memory"), (e: unknown) => {
            assert.ok(e instanceof RangeError);
            assert.match(e.message, /^memory: "512" needs a unit/);
            assert.match(e.message, /KiB/);
            return true;
        });
    });

    it("refuses an unknown unit and names it", () => {
        assert.throws(() => parseMemoryKiB("512XB", "maxMemory"), (e: unknown) => {
            assert.ok(e instanceof RangeError);
            assert.match(e.message, /^maxMemory: unknown unit "XB"/);
            return true;
        });
        assert.throws(() => parseMemoryKiB("4 parsecs", "memory"), /unknown unit "parsecs"/);
    });

    it("refuses sizes under 64 MiB as a likely unit mistake", () => {
        for (const small of ["63MiB", "4096KiB", "1MiB", 63, 0.5]) {
            assert.throws(() => parseMemoryKiB(small, "memory"), (e: unknown) => {
                assert.ok(e instanceof RangeError);
                assert.match(e.message, /under 64 MiB: most likely a unit mistake/);
                assert.match(e.message, /^memory: /);
                return true;
            }, `expected ${JSON.stringify(small)} to be refused`);
        }
        assert.equal(MINIMUM_MEMORY_KIB, 64 * 1024);
    });

    it("refuses negative, zero, NaN and infinite numbers", () => {
        for (const bad of [-1, -512, 0, NaN, Infinity, -Infinity]) {
            assert.throws(() => parseMemoryKiB(bad, "memory"), (e: unknown) => {
                assert.ok(e instanceof RangeError);
                assert.match(e.message, /^memory: /);
                return true;
            }, `expected ${bad} to be refused`);
        }
        assert.throws(() => parseMemoryKiB(-512, "memory"), /not a positive size in MiB/);
        assert.throws(() => parseMemoryKiB(NaN, "memory"), /not a positive size in MiB/);
    });

    it("refuses malformed strings", () => {
        for (const bad of ["-512MiB", "", "MiB", "1.GiB", "1,5GiB", "0x10GiB", "5 5 GiB"]) {
            assert.throws(() => parseMemoryKiB(bad, "memory"), RangeError, `expected ${JSON.stringify(bad)} to be refused`);
        }
    });

    it("knows binary units only (k, m, g, t with or without b / ib)", () => {
        assert.equal(KIB_PER_UNIT.mib, 1024);
        assert.equal(KIB_PER_UNIT.mb, 1024);
        assert.equal(KIB_PER_UNIT.g, 1024 ** 2);
        assert.equal(KIB_PER_UNIT.tib, 1024 ** 3);
    });
});

describe("units: formatKiB", () => {
    const cases: Array<[number, string]> = [
        [512 * MiB, "512MiB"],
        [384 * MiB, "384MiB"],
        [4 * GiB, "4GiB"],
        [1536 * MiB, "1536MiB"],
        [1024 * GiB, "1TiB"],
        [2048 * GiB, "2TiB"],
        [1000, "1000KiB"],
        [1025, "1025KiB"],
        [1, "1KiB"],
    ];
    for (const [kib, text] of cases) {
        it(`formats ${kib} KiB as ${text}`, () => assert.equal(formatKiB(kib), text));
    }

    it("round-trips with parseMemoryKiB", () => {
        for (const kib of [64 * MiB, 384 * MiB, 1536 * MiB, 4 * GiB, 1024 * GiB, 65537]) {
            assert.equal(parseMemoryKiB(formatKiB(kib), "memory"), kib);
        }
    });
});
