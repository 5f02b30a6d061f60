/** The parts of a domain's XML the providers read: sizes, vCPUs, machine and devices. */
import { attr, child, children, parseXml, textOf, XmlNode } from "./xml-codec";
import { DiskValues, readDisk } from "./disk-xml";
import { InterfaceValues, readInterface } from "./interface-xml";
import { KIB_PER_UNIT } from "../units";
import { readTuning, TuningXml } from "./tuning-xml";

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
    /** The block copies running on disks (`<disk><mirror>`, live XML only): which disk, into which file, whether all is copied. */
    mirrors: BlockCopyMirror[];
    interfaces: InterfaceValues[];
    /** `<memory model=…>` devices (DIMMs, virtio-mem): their sizes count in `memoryKiB`. */
    memoryDevices: MemoryDevice[];
    /**
     * Seconds between the balloon's statistics (`<memballoon><stats period>`); undefined when not
     * set, and then what `dommemstat` shows of the guest is what its driver said once, at boot.
     */
    balloonStatsPeriod?: number;
    /** `<domain type>`: "kvm", or "qemu" for TCG (QEMU translating every instruction). */
    type?: string;
    /** `<features><tcg><tb-cache>`: the size of TCG's translation cache, when set. */
    tbCacheKiB?: number;
    /** `<cputune>`, `<memtune>`, `<blkiotune>`. */
    tuning: TuningXml;
}

export interface MemoryDevice {
    model: string;
    sizeKiB: number;
    /** virtio-mem: what the guest is asked to plug, what it has plugged, the block size. */
    requestedKiB?: number;
    currentKiB?: number;
    blockKiB?: number;
}

export interface BlockCopyMirror {
    /** The disk's target (vda). */
    target: string;
    /** The copy's destination: a file's path or a block device's. */
    path?: string;
    /** libvirt's READY: everything copied, the guest's writes mirrored, waiting for a pivot. */
    ready: boolean;
}

function mirrorsOf(disks: XmlNode[]): BlockCopyMirror[] {
    return disks.flatMap((disk) => {
        const mirror = child(disk, "mirror");
        if (!mirror) return [];
        const source = child(mirror, "source");
        return [{ target: attr(child(disk, "target"), "dev") ?? "", path: attr(mirror, "file") ?? attr(source, "file") ?? attr(source, "dev"), ready: attr(mirror, "ready") === "yes" }];
    });
}

function memoryDevice(node: XmlNode): MemoryDevice {
    const target = child(node, "target");
    const optional = (name: string) => (child(target, name) ? sizeKiB(child(target, name)) : undefined);
    return { model: attr(node, "model") ?? "", sizeKiB: sizeKiB(child(target, "size")), requestedKiB: optional("requested"), currentKiB: optional("current"), blockKiB: optional("block") };
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
    const tbCache = child(child(child(domain, "features"), "tcg"), "tb-cache");
    return {
        name: textOf(child(domain, "name")) ?? "",
        id: attr(domain, "id"),
        memoryKiB,
        currentMemoryKiB: current ? sizeKiB(current) : memoryKiB,
        maxVcpus,
        currentVcpus: Number(attr(vcpu, "current") ?? maxVcpus),
        machine: attr(child(child(domain, "os"), "type"), "machine"),
        disks: children(devices, "disk").map(readDisk),
        mirrors: mirrorsOf(children(devices, "disk")),
        interfaces: children(devices, "interface").map(readInterface),
        memoryDevices: children(devices, "memory").map(memoryDevice),
        balloonStatsPeriod: Number(attr(child(child(devices, "memballoon"), "stats"), "period")) || undefined,
        type: attr(domain, "type"),
        tbCacheKiB: tbCache ? sizeKiB(tbCache) : undefined,
        tuning: readTuning(domain, sizeKiB),
    };
}
