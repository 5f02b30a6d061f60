/**
 * fast-xml-parser configured once: attributes under "@_", text under "#text", every value a string
 * (MACs and serials must not become numbers), and device lists always arrays.
 */
import { XMLBuilder, XMLParser } from "fast-xml-parser";

export type XmlNode = { [key: string]: XmlValue };
export type XmlValue = string | XmlNode | XmlNode[];

const ALWAYS_ARRAYS = new Set(["disk", "interface", "controller", "hostdev"]);

const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: "@_",
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: true,
    isArray: (name) => ALWAYS_ARRAYS.has(name),
});

const builder = new XMLBuilder({
    ignoreAttributes: false,
    attributeNamePrefix: "@_",
    suppressEmptyNode: true,
    format: false,
});

export function parseXml(text: string): XmlNode {
    return parser.parse(text) as XmlNode;
}

export function buildXml(root: string, node: XmlNode): string {
    return builder.build({ [root]: node }) as string;
}

/** A child element as a node (an element holding only text becomes `{ "#text": … }`). */
export function child(node: XmlNode | undefined, name: string): XmlNode | undefined {
    const value = node?.[name];
    if (value === undefined || Array.isArray(value)) return undefined;
    return typeof value === "string" ? { "#text": value } : value;
}

export function children(node: XmlNode | undefined, name: string): XmlNode[] {
    const value = node?.[name];
    if (value === undefined) return [];
    if (Array.isArray(value)) return value;
    return [typeof value === "string" ? { "#text": value } : value];
}

export function textOf(node: XmlNode | undefined): string | undefined {
    const text = node?.["#text"];
    return typeof text === "string" ? text : undefined;
}

export function attr(node: XmlNode | undefined, name: string): string | undefined {
    const value = node?.[`@_${name}`];
    return typeof value === "string" ? value : undefined;
}
