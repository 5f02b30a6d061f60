/**
 * OpenSSH's ProxyJump syntax: `[user@]host[:port]` hops separated by commas, each also allowed as
 * `ssh://[user@]host[:port]`, IPv6 addresses in brackets, and `none` for no jump at all.
 */
import { InputError } from "../errors";

export interface JumpSpec {
    host: string;
    port?: number;
    user?: string;
}

const HOST = /^[A-Za-z0-9._%-]+$|^[0-9A-Fa-f:.]+$/;
const USER = /^[A-Za-z0-9._][A-Za-z0-9._@-]*$/;

function badHop(text: string, position: number, why: string): InputError {
    return new InputError(`connection.proxyJump hop ${position} ('${text}') ${why}`, {},
        "write jump hosts as OpenSSH does: \"user@bastion:22,user@inner\" (user and port optional), or as objects { host, port, user }");
}

function parseHop(rawText: string, position: number): JumpSpec {
    const text = rawText.trim();
    let rest = text.startsWith("ssh://") ? text.slice("ssh://".length).replace(/\/$/, "") : text;
    if (!rest) throw badHop(text, position, "is empty");
    let user: string | undefined;
    // The user ends at the last '@': OpenSSH allows '@' inside user names (user@domain@host).
    const at = rest.lastIndexOf("@");
    if (at >= 0) {
        user = rest.slice(0, at);
        rest = rest.slice(at + 1);
        if (!USER.test(user)) throw badHop(text, position, "has an invalid user name");
    }
    let host = rest;
    let portText: string | undefined;
    const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(rest);
    if (bracketed) {
        host = bracketed[1];
        portText = bracketed[2];
    } else if ((rest.match(/:/g) ?? []).length === 1) {
        [host, portText] = rest.split(":");
    }
    if (!host || !HOST.test(host)) throw badHop(text, position, "has an invalid host name");
    let port: number | undefined;
    if (portText !== undefined) {
        port = Number(portText);
        if (!/^\d+$/.test(portText) || port < 1 || port > 65535) throw badHop(text, position, "has an invalid port");
    }
    return { host, ...(port !== undefined && { port }), ...(user !== undefined && { user }) };
}

/** The hops of a ProxyJump value, in order; `none` (or an empty value) means no jump host. */
export function parseProxyJump(value: string): JumpSpec[] {
    const trimmed = value.trim();
    if (trimmed === "" || trimmed.toLowerCase() === "none") return [];
    if (/[\s\0'"`$;|&<>()\\]/.test(trimmed.replace(/,\s+/g, ","))) {
        throw badHop(trimmed, 1, "holds characters no host, user or port can contain");
    }
    return trimmed.split(",").map((hop, i) => parseHop(hop, i + 1));
}
