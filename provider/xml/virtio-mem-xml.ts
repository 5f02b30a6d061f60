/**
 * The persistent config with a virtio-mem device added: what RIG.md shows libvirt needs, a
 * `<maxMemory slots=…>`, a NUMA cell holding the boot memory, and the device. Only `virsh define`
 * can make this change; the running guest gets the device at its next boot. libvirt reads the
 * top-level elements by name, so they are added before `</domain>` (and the device before
 * `</devices>`); the rest of the config stays as libvirt wrote it.
 */

export interface VirtioMemAddition {
    /** The boot memory: one NUMA cell holds it. */
    bootKiB: number;
    sizeKiB: number;
    blockKiB: number;
    /** What the device is asked to plug at boot. */
    requestedKiB: number;
    /** vCPUs 0..maxVcpus-1 belong to the cell. */
    maxVcpus: number;
}

/** Why the config cannot take a device this way, or undefined. */
export function virtioMemObstacle(configText: string): string | undefined {
    if (/<numa>/.test(configText)) return "the domain already has a NUMA topology";
    if (/<maxMemory\b/.test(configText)) return "the domain already has a <maxMemory> (memory hot-plug slots)";
    if (!/<\/devices>/.test(configText)) return "the domain has no <devices> element";
    return undefined;
}

export function withVirtioMemDevice(configText: string, add: VirtioMemAddition): string {
    const maxKiB = add.bootKiB + add.sizeKiB;
    const cpus = add.maxVcpus > 1 ? `0-${add.maxVcpus - 1}` : "0";
    const device = `<memory model='virtio-mem'><target><size unit='KiB'>${add.sizeKiB}</size><node>0</node>` +
        `<block unit='KiB'>${add.blockKiB}</block><requested unit='KiB'>${add.requestedKiB}</requested></target></memory>`;
    const numa = `<numa><cell id='0' cpus='${cpus}' memory='${add.bootKiB}' unit='KiB'/></numa>`;
    const lastDevices = configText.lastIndexOf("</devices>");
    let text = `${configText.slice(0, lastDevices)}${device}${configText.slice(lastDevices)}`;
    // libvirt writes a <cpu> (mode, model) into most configs: the cell goes inside it.
    const selfClosing = /<cpu\b([^>]*)\/>/.exec(text);
    let topLevel = `<maxMemory slots='1' unit='KiB'>${maxKiB}</maxMemory>`;
    if (selfClosing) text = text.replace(selfClosing[0], `<cpu${selfClosing[1]}>${numa}</cpu>`);
    else if (/<cpu\b/.test(text)) text = text.replace("</cpu>", `${numa}</cpu>`);
    else topLevel += `<cpu>${numa}</cpu>`;
    const end = text.lastIndexOf("</domain>");
    // A step's stdin is one line: the indentation between elements goes (libvirt ignores it).
    return `${text.slice(0, end)}${topLevel}${text.slice(end)}`.replace(/>\s*\n\s*</g, "><").replace(/\s*\n\s*/g, " ");
}
