/**
 * A device kind declared once: each field's place in libvirt's XML. The same declaration builds
 * the XML we attach and reads back the XML `dumpxml` returns, so the two cannot disagree.
 *
 * Paths: "@type" (root attribute), "driver/@cache" (child attribute), "serial" (child text),
 * "readonly" with kind "flag" (element present or not).
 */
import { attr, child, textOf, XmlNode } from "./xml-codec";

export type FieldValue = string | boolean;

export interface FieldDeclaration<F extends string> {
    field: F;
    path: string;
    kind?: "value" | "flag";
}

export type DeviceDeclaration<F extends string> = readonly FieldDeclaration<F>[];
export type DeviceValues<F extends string> = Partial<Record<F, FieldValue>>;

interface ParsedPath {
    elements: string[];
    attribute?: string;
}

function parsePath(path: string): ParsedPath {
    const parts = path.split("/");
    const last = parts[parts.length - 1];
    return last.startsWith("@")
        ? { elements: parts.slice(0, -1), attribute: last.slice(1) }
        : { elements: parts };
}

export function buildDeviceNode<F extends string>(declaration: DeviceDeclaration<F>, values: DeviceValues<F>): XmlNode {
    const root: XmlNode = {};
    for (const { field, path, kind } of declaration) {
        const value = values[field];
        if (value === undefined || value === false || value === "") continue;
        const { elements, attribute } = parsePath(path);
        let node = root;
        for (const name of elements) {
            const existing = node[name];
            if (existing === undefined || typeof existing === "string" || Array.isArray(existing)) node[name] = {};
            node = node[name] as XmlNode;
        }
        if (kind === "flag") continue;
        if (attribute) node[`@_${attribute}`] = String(value);
        else node["#text"] = String(value);
    }
    return root;
}

export function readDeviceNode<F extends string>(declaration: DeviceDeclaration<F>, node: XmlNode): DeviceValues<F> {
    const values: DeviceValues<F> = {};
    for (const { field, path, kind } of declaration) {
        const { elements, attribute } = parsePath(path);
        let current: XmlNode | undefined = node;
        for (const name of elements) current = child(current, name);
        if (kind === "flag") {
            if (current !== undefined) values[field] = true;
            continue;
        }
        const value = attribute ? attr(current, attribute) : textOf(current);
        if (value !== undefined) values[field] = value;
    }
    return values;
}
