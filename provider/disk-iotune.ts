/**
 * A disk's I/O limits declared once: each friendly field, its `<iotune>` element and its
 * `blkdeviotune` flag. The XML read, the virsh command, the check and the comparison all come from
 * this list.
 */
import type { DiskIoTune } from "./contract";
import type { DiskValues } from "./xml/disk-xml";

export const IOTUNE_FIELDS = [
    { field: "totalBytesSec", xml: "total_bytes_sec" },
    { field: "readBytesSec", xml: "read_bytes_sec" },
    { field: "writeBytesSec", xml: "write_bytes_sec" },
    { field: "totalIopsSec", xml: "total_iops_sec" },
    { field: "readIopsSec", xml: "read_iops_sec" },
    { field: "writeIopsSec", xml: "write_iops_sec" },
] as const;

export type IoTuneField = typeof IOTUNE_FIELDS[number]["field"];
export type IoTuneXmlName = typeof IOTUNE_FIELDS[number]["xml"];

/** libvirt refuses a total together with a read or write limit of the same kind. */
const EXCLUSIVE: ReadonlyArray<[IoTuneField, IoTuneField[]]> = [
    ["totalBytesSec", ["readBytesSec", "writeBytesSec"]],
    ["totalIopsSec", ["readIopsSec", "writeIopsSec"]],
];

/** The limits that are set (non-zero), in declaration order; undefined when none is. */
export function normalizeIoTune(value: unknown): DiskIoTune | undefined {
    if (value === null || typeof value !== "object") return undefined;
    const source = value as Record<string, unknown>;
    const set: DiskIoTune = {};
    for (const { field } of IOTUNE_FIELDS) {
        const v = Number(source[field] ?? 0);
        if (v !== 0) set[field] = v;
    }
    return Object.keys(set).length > 0 ? set : undefined;
}

/** The limits in a disk's XML (`<iotune>`), as normalizeIoTune gives them. */
export function ioTuneOfDisk(disk: DiskValues): DiskIoTune | undefined {
    return normalizeIoTune(Object.fromEntries(IOTUNE_FIELDS.map(({ field, xml }) => [field, disk[xml]])));
}

/** The `<iotune>` fields of the disk XML to attach. */
export function ioTuneXmlValues(iotune: DiskIoTune | undefined): Partial<Record<IoTuneXmlName, string>> {
    const set = normalizeIoTune(iotune) ?? {};
    return Object.fromEntries(IOTUNE_FIELDS.filter(({ field }) => set[field] !== undefined).map(({ field, xml }) => [xml, String(set[field])]));
}

/** Every limit, 0 for the ones not set: one command sets them all, so a total and a read/write limit never meet. */
export function blkdeviotuneFlags(iotune: DiskIoTune | undefined): string[] {
    const set = normalizeIoTune(iotune) ?? {};
    return IOTUNE_FIELDS.map(({ field, xml }) => `--${xml.replace(/_/g, "-")}=${set[field] ?? 0}`);
}

/** `virsh blkdeviotune DOMAIN DEVICE` output (`total_bytes_sec: 1000`), as normalizeIoTune gives it. */
export function parseBlkdeviotune(stdout: string): DiskIoTune | undefined {
    const values: Record<string, number> = {};
    for (const { field, xml } of IOTUNE_FIELDS) {
        const match = new RegExp(`^${xml}\\s*:\\s*(\\d+)\\s*$`, "m").exec(stdout);
        if (match) values[field] = Number(match[1]);
    }
    return normalizeIoTune(values);
}

export function sameIoTune(a: DiskIoTune | undefined, b: DiskIoTune | undefined): boolean {
    return JSON.stringify(normalizeIoTune(a) ?? {}) === JSON.stringify(normalizeIoTune(b) ?? {});
}

/** The check of the `iotune` input: known fields, whole numbers ≥ 0, no conflicting pair. */
export function ioTuneProblem(value: unknown): string | undefined {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
        return `must be an object with any of ${IOTUNE_FIELDS.map((f) => f.field).join(", ")}`;
    }
    const source = value as Record<string, unknown>;
    const known = new Set<string>(IOTUNE_FIELDS.map((f) => f.field));
    const unknown = Object.keys(source).filter((k) => !known.has(k));
    if (unknown.length > 0) return `unknown field ${unknown.join(", ")}; use ${[...known].join(", ")}`;
    for (const { field } of IOTUNE_FIELDS) {
        const v = source[field];
        if (v !== undefined && !(typeof v === "number" && Number.isSafeInteger(v) && v >= 0)) {
            return `${field} must be a whole number ≥ 0 (got ${JSON.stringify(v)}); 0 or absent means no limit`;
        }
    }
    for (const [total, parts] of EXCLUSIVE) {
        const clash = parts.filter((p) => Number(source[p] ?? 0) > 0);
        if (Number(source[total] ?? 0) > 0 && clash.length > 0) {
            return `${total} and ${clash.join(" and ")} cannot both be set (libvirt refuses a total with a read/write limit of the same kind); keep either ${total} or ${clash.join("/")}`;
        }
    }
    return undefined;
}
