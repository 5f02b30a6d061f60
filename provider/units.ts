/**
 * Memory sizes. Users write "512MiB", "4GiB", "4G" (as virsh reads it: binary) or a number of MiB.
 * A bare number is never KiB: `virsh setmem cos 4` means 4 KiB and kills the guest.
 */
export const KIB_PER_UNIT: Readonly<Record<string, number>> = {
    k: 1, kb: 1, kib: 1,
    m: 1024, mb: 1024, mib: 1024,
    g: 1024 ** 2, gb: 1024 ** 2, gib: 1024 ** 2,
    t: 1024 ** 3, tb: 1024 ** 3, tib: 1024 ** 3,
};

/** Below this a size is most likely a unit mistake (KiB typed as MiB, say). */
export const MINIMUM_MEMORY_KIB = 64 * 1024;

export type MemorySize = string | number;

/** Parses a memory size to KiB, or throws a message naming the field and the accepted forms. */
export function parseMemoryKiB(value: MemorySize, field: string): number {
    const kib = toKiB(value, field);
    if (kib < MINIMUM_MEMORY_KIB) {
        throw new RangeError(
            `${field}: ${JSON.stringify(value)} is ${kib} KiB, under 64 MiB: most likely a unit mistake ` +
            `(write "512MiB" or "4GiB"; a plain number means MiB)`);
    }
    return kib;
}

function toKiB(value: MemorySize, field: string): number {
    if (typeof value === "number") {
        if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${field}: ${value} is not a positive size in MiB`);
        return Math.round(value * 1024);
    }
    const match = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$/.exec(value);
    if (!match) {
        throw new RangeError(
            `${field}: ${JSON.stringify(value)} needs a unit, e.g. "512MiB" or "4GiB" ` +
            `(a bare number in a string is refused: virsh would read it as KiB)`);
    }
    const perUnit = KIB_PER_UNIT[match[2].toLowerCase()];
    if (perUnit === undefined) {
        throw new RangeError(`${field}: unknown unit "${match[2]}" in ${JSON.stringify(value)}; use KiB, MiB, GiB or TiB`);
    }
    return Math.round(Number(match[1]) * perUnit);
}

/** The shortest exact binary form of a KiB amount, for messages and virsh arguments ("384MiB"). */
export function formatKiB(kib: number): string {
    for (const [unit, size] of [["TiB", 1024 ** 3], ["GiB", 1024 ** 2], ["MiB", 1024]] as const) {
        if (kib % size === 0) return `${kib / size}${unit}`;
    }
    return `${kib}KiB`;
}

const MIB_BYTES = 1024 * 1024;
/** Disks are addressed in 512-byte sectors: a size must be a whole number of them. */
export const SECTOR_BYTES = 512;

/**
 * Parses a disk size to bytes: like a memory size ("64MiB", "20GiB", a number of MiB), plus a
 * byte count with unit "B". Under 1 MiB is refused as a likely unit mistake; so is a size that is
 * not a whole number of 512-byte sectors.
 */
export function parseDiskSizeBytes(value: MemorySize, field: string): number {
    let bytes: number;
    const byteCount = typeof value === "string" ? /^\s*(\d+)\s*(?:b|bytes)\s*$/i.exec(value) : null;
    if (byteCount) bytes = Number(byteCount[1]);
    else if (typeof value === "number") {
        if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${field}: ${value} is not a positive size in MiB`);
        bytes = value * MIB_BYTES;
    } else {
        bytes = diskKiB(value, field) * 1024;
    }
    if (bytes < MIB_BYTES) {
        throw new RangeError(`${field}: ${JSON.stringify(value)} is ${bytes} bytes, under 1 MiB: most likely a unit mistake ` +
            `(write "64MiB" or "20GiB"; a plain number means MiB)`);
    }
    if (!Number.isInteger(bytes) || bytes % SECTOR_BYTES !== 0) {
        const up = Math.ceil(bytes / SECTOR_BYTES) * SECTOR_BYTES;
        throw new RangeError(`${field}: ${JSON.stringify(value)} is ${bytes} bytes, not a whole number of ${SECTOR_BYTES}-byte sectors; ` +
            `write "${up}B" (or a whole number of KiB, MiB or GiB)`);
    }
    return bytes;
}

/** A disk size's KiB, unrounded: a fraction of a sector must be seen, not rounded away. */
function diskKiB(value: string, field: string): number {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$/.exec(value);
    if (!match) {
        throw new RangeError(`${field}: ${JSON.stringify(value)} needs a unit, e.g. "64MiB" or "20GiB" (a plain number, not a string, means MiB)`);
    }
    const perUnit = KIB_PER_UNIT[match[2].toLowerCase()];
    if (perUnit === undefined) {
        throw new RangeError(`${field}: unknown unit "${match[2]}" in ${JSON.stringify(value)}; use B, KiB, MiB, GiB or TiB`);
    }
    return Number(match[1]) * perUnit;
}

/** The shortest exact form of a byte count ("128MiB", "1536KiB", "1049088B"), for messages and outputs. */
export function formatBytes(bytes: number): string {
    return bytes % 1024 === 0 ? formatKiB(bytes / 1024) : `${bytes}B`;
}
