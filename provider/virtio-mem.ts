/**
 * Memory past the boot maximum with a virtio-mem device. libvirt's `<memory>` then counts the
 * device's whole size, and the live `<currentMemory>` counts what it has plugged; the balloon only
 * covers the boot maximum (the NUMA cells). The provider splits the guest's total between the two.
 */
import type { DomainXml, MemoryDevice } from "./xml/domain-xml";
import { formatKiB } from "./units";

export function virtioMemOf(xml: DomainXml): MemoryDevice | undefined {
    return xml.memoryDevices.find((d) => d.model === "virtio-mem");
}

/** The boot maximum: `<memory>` without the memory devices. */
export function bootMaxKiB(xml: DomainXml): number {
    return xml.memoryDevices.reduce((left, d) => left - d.sizeKiB, xml.memoryKiB);
}

/**
 * The domain as the balloon sees it: the maximum is the boot maximum, the current size the
 * balloon's alone (the live XML's includes what the device plugged; `balloonKiB` is dommemstat's).
 */
export function balloonView(xml: DomainXml, balloonKiB?: number | null): DomainXml {
    if (!virtioMemOf(xml) && xml.memoryDevices.length === 0) return xml;
    const plugged = xml.memoryDevices.reduce((sum, d) => sum + (d.currentKiB ?? 0), 0);
    const current = balloonKiB ?? (xml.id !== undefined ? xml.currentMemoryKiB - plugged : xml.currentMemoryKiB);
    return { ...xml, memoryKiB: bootMaxKiB(xml), currentMemoryKiB: current };
}

export interface MemorySplit {
    balloonKiB: number;
    requestedKiB: number;
}

/** The ceiling a virtio-mem domain can take live: boot maximum plus the device's size. */
export function ceilingKiB(xml: DomainXml): number {
    const device = virtioMemOf(xml);
    return bootMaxKiB(xml) + (device?.sizeKiB ?? 0);
}

/**
 * The guest's total split: the balloon up to the boot maximum, the rest requested from the device.
 * Returns a message naming the fix when the total cannot be had.
 */
export function splitMemory(xml: DomainXml, totalKiB: number): MemorySplit | string {
    const device = virtioMemOf(xml);
    if (!device) return "no virtio-mem device";
    const boot = bootMaxKiB(xml);
    const ceiling = boot + device.sizeKiB;
    if (totalKiB > ceiling) {
        return `memory ${formatKiB(totalKiB)} is above the ceiling ${formatKiB(ceiling)} (boot maximum ${formatKiB(boot)} + virtio-mem device ${formatKiB(device.sizeKiB)})`;
    }
    const balloonKiB = Math.min(totalKiB, boot);
    const requestedKiB = totalKiB - balloonKiB;
    const block = device.blockKiB ?? 2048;
    if (requestedKiB % block !== 0) {
        const up = boot + Math.ceil(requestedKiB / block) * block;
        return `memory ${formatKiB(totalKiB)} is the boot maximum ${formatKiB(boot)} plus ${formatKiB(requestedKiB)}, not a whole number of the virtio-mem device's ${formatKiB(block)} blocks (nearest above: ${formatKiB(up)})`;
    }
    return { balloonKiB, requestedKiB };
}
