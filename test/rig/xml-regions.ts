/**
 * Regions of a libvirt domain XML as `virsh dumpxml` prints it (two spaces per level): an element
 * is the lines from its opening tag to its closing tag at the same indentation. A test masks the
 * regions a change may touch and compares the rest byte for byte. Plain text, no XML library: the
 * test never checks the provider with the provider's own parser.
 */

/** Which regions a change may touch. */
export interface Region {
    /** Element name ("memory", "disk", "interface", "controller"). */
    element: string;
    /** Top level (a child of <domain>) or a device (a child of <devices>). */
    level: "top" | "device";
    /** Only the elements whose text contains every one of these ("target dev='vdb'"). */
    containing?: readonly string[];
}

const INDENT: Record<Region["level"], string> = { top: "  ", device: "    " };

function matchesStart(line: string, region: Region): boolean {
    const indent = INDENT[region.level];
    return line.startsWith(`${indent}<${region.element}`) && /^[\s/>]/.test(line.slice(indent.length + region.element.length + 1));
}

/** The XML without the regions (a region may be there before and gone after, or the other way round). */
export function withoutRegions(xml: string, regions: readonly Region[]): string {
    const lines = xml.split("\n");
    const kept: string[] = [];
    for (let i = 0; i < lines.length; i++) {
        const starting = regions.filter((r) => matchesStart(lines[i], r));
        if (starting.length === 0) {
            kept.push(lines[i]);
            continue;
        }
        const { element, level } = starting[0];
        const indent = INDENT[level];
        let end = i;
        // A one-line element (`<memory unit='KiB'>1</memory>`, `<readonly/>`) ends where it starts.
        if (!/\/>\s*$/.test(lines[i]) && !lines[i].includes(`</${element}>`)) {
            while (end < lines.length - 1 && !lines[end].startsWith(`${indent}</${element}>`)) end++;
        }
        const block = lines.slice(i, end + 1).join("\n");
        if (!starting.some((r) => (r.containing ?? []).every((text) => block.includes(text)))) kept.push(...lines.slice(i, end + 1));
        i = end;
    }
    return kept.join("\n");
}
