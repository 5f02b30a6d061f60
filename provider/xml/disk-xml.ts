/** A `<disk>` device: the fields we set and read, named as users write them, placed as libvirt does. */
import { buildXml } from "./xml-codec";
import { buildDeviceNode, DeviceDeclaration, DeviceValues, readDeviceNode } from "./device-declaration";
import type { XmlNode } from "./xml-codec";

export type DiskField = "sourceType" | "device" | "driverName" | "format" | "cache" | "io" | "file" | "dev"
    | "target" | "bus" | "readonly" | "serial";

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
