/** A `<disk>` device: the fields we set and read, named as users write them, placed as libvirt does. */
import { buildXml } from "./xml-codec";
import { buildDeviceNode, DeviceDeclaration, DeviceValues, readDeviceNode } from "./device-declaration";
import type { XmlNode } from "./xml-codec";

export type DiskField = "sourceType" | "device" | "driverName" | "format" | "cache" | "io" | "file" | "dev"
    | "target" | "bus" | "readonly" | "serial"
    | "total_bytes_sec" | "read_bytes_sec" | "write_bytes_sec" | "total_iops_sec" | "read_iops_sec" | "write_iops_sec";

export const DISK_DECLARATION: DeviceDeclaration<DiskField> = [
    { field: "sourceType", path: "@type" },
    { field: "device", path: "@device" },
    { field: "driverName", path: "driver/@name" },
    { field: "format", path: "driver/@type" },
    { field: "cache", path: "driver/@cache" },
    { field: "io", path: "driver/@io" },
    { field: "file", path: "source/@file" },
    { field: "dev", path: "source/@dev" },
    { field: "target", path: "target/@dev" },
    { field: "bus", path: "target/@bus" },
    // I/O limits (provider/disk-iotune.ts names them as users write them).
    { field: "total_bytes_sec", path: "iotune/total_bytes_sec" },
    { field: "read_bytes_sec", path: "iotune/read_bytes_sec" },
    { field: "write_bytes_sec", path: "iotune/write_bytes_sec" },
    { field: "total_iops_sec", path: "iotune/total_iops_sec" },
    { field: "read_iops_sec", path: "iotune/read_iops_sec" },
    { field: "write_iops_sec", path: "iotune/write_iops_sec" },
    { field: "readonly", path: "readonly", kind: "flag" },
    { field: "serial", path: "serial" },
];

export type DiskValues = DeviceValues<DiskField>;

export function buildDiskXml(values: DiskValues): string {
    return buildXml("disk", buildDeviceNode(DISK_DECLARATION, values));
}

export function readDisk(node: XmlNode): DiskValues {
    return readDeviceNode(DISK_DECLARATION, node);
}

/** The host path a disk points at, whichever source attribute holds it. */
export function diskSourcePath(disk: DiskValues): string | undefined {
    const path = disk.file ?? disk.dev;
    return typeof path === "string" ? path : undefined;
}
