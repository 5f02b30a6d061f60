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

/** A splice of the config text: `remove` characters at `at` give way to `text`. */
interface Splice {
    at: number;
    remove: number;
    text: string;
}

/**
 * The config text with the three additions spliced in and every other byte as it was (a multi-line
 * description, a console password). The <cpu> is looked for after <metadata>, whose elements are
 * the user's own and may share the name.
 */
export function withVirtioMemDevice(configText: string, add: VirtioMemAddition): string {
    const maxKiB = add.bootKiB + add.sizeKiB;
    const cpus = add.maxVcpus > 1 ? `0-${add.maxVcpus - 1}` : "0";
    const device = `<memory model='virtio-mem'><target><size unit='KiB'>${add.sizeKiB}</size><node>0</node>` +
        `<block unit='KiB'>${add.blockKiB}</block><requested unit='KiB'>${add.requestedKiB}</requested></target></memory>`;
    const numa = `<numa><cell id='0' cpus='${cpus}' memory='${add.bootKiB}' unit='KiB'/></numa>`;
    const cpuTag = /<cpu\b([^>]*?)(\/?)>/g;
    cpuTag.lastIndex = Math.max(0, configText.indexOf("</metadata>"));
    const cpu = cpuTag.exec(configText);
    const splices: Splice[] = [{ at: configText.lastIndexOf("</devices>"), remove: 0, text: device }];
    let topLevel = `<maxMemory slots='1' unit='KiB'>${maxKiB}</maxMemory>`;
    // libvirt writes a <cpu> (mode, model) into most configs: the cell goes inside it.
    if (cpu?.[2]) splices.push({ at: cpu.index, remove: cpu[0].length, text: `<cpu${cpu[1]}>${numa}</cpu>` });
    else if (cpu) splices.push({ at: configText.indexOf("</cpu>", cpu.index), remove: 0, text: numa });
    else topLevel += `<cpu>${numa}</cpu>`;
    splices.push({ at: configText.lastIndexOf("</domain>"), remove: 0, text: topLevel });
    // From the end backwards, so each index still points into the original text.
    return splices.sort((a, b) => b.at - a.at)
        .reduce((text, { at, remove, text: added }) => `${text.slice(0, at)}${added}${text.slice(at + remove)}`, configText);
}
