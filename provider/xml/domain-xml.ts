/** The parts of a domain's XML the providers read: sizes, vCPUs, machine and devices. */
import { attr, child, children, parseXml, textOf, XmlNode } from "./xml-codec";
import { DiskValues, readDisk } from "./disk-xml";
import { InterfaceValues, readInterface } from "./interface-xml";
import { KIB_PER_UNIT } from "../units";

export interface DomainXml {
    name: string;
    /** Present only while the domain runs. */
    id?: string;
    memoryKiB: number;
    currentMemoryKiB: number;
    maxVcpus: number;
    currentVcpus: number;
    machine?: string;
    disks: DiskValues[];
    interfaces: InterfaceValues[];
}

function sizeKiB(node: XmlNode | undefined): number {
    const unit = (attr(node, "unit") ?? "KiB").toLowerCase();
    const perUnit = unit === "b" || unit === "bytes" ? 1 / 1024 : KIB_PER_UNIT[unit];
    return Math.round(Number(textOf(node)) * (perUnit ?? 1));
}

export function parseDomainXml(text: string): DomainXml {
    const domain = child(parseXml(text), "domain");
    if (!domain) throw new Error("virsh dumpxml returned no <domain> element");
    const vcpu = child(domain, "vcpu");
    const maxVcpus = Number(textOf(vcpu));
    const devices = child(domain, "devices");
    const memoryKiB = sizeKiB(child(domain, "memory"));
    const current = child(domain, "currentMemory");
    return {
        name: textOf(child(domain, "name")) ?? "",
        id: attr(domain, "id"),
        memoryKiB,
        currentMemoryKiB: current ? sizeKiB(current) : memoryKiB,
        maxVcpus,
        currentVcpus: Number(attr(vcpu, "current") ?? maxVcpus),
        machine: attr(child(child(domain, "os"), "type"), "machine"),
        disks: children(devices, "disk").map(readDisk),
        interfaces: children(devices, "interface").map(readInterface),
    };
}
