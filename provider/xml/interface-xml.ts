/** An `<interface>` device, declared as for disks. */
import { buildXml } from "./xml-codec";
import { buildDeviceNode, DeviceDeclaration, DeviceValues, readDeviceNode } from "./device-declaration";
import type { XmlNode } from "./xml-codec";

export type InterfaceField = "type" | "bridge" | "network" | "mac" | "model" | "linkState";

export const INTERFACE_DECLARATION: DeviceDeclaration<InterfaceField> = [
    { field: "type", path: "@type" },
    { field: "bridge", path: "source/@bridge" },
    { field: "network", path: "source/@network" },
    { field: "mac", path: "mac/@address" },
    { field: "model", path: "model/@type" },
    { field: "linkState", path: "link/@state" },
];

export type InterfaceValues = DeviceValues<InterfaceField>;

export function buildInterfaceXml(values: InterfaceValues): string {
    return buildXml("interface", buildDeviceNode(INTERFACE_DECLARATION, values));
}

export function readInterface(node: XmlNode): InterfaceValues {
    return readDeviceNode(INTERFACE_DECLARATION, node);
}
