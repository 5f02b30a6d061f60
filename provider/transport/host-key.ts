/**
 * Host key verification: a pinned `SHA256:…` fingerprint, or a known_hosts file read as OpenSSH
 * reads it: host patterns with `*`, `?`, `!negation` and comma lists, hashed names, `[host]:port`,
 * and `@revoked` lines that refuse a key whatever other lines say. The fingerprint format is
 * OpenSSH's, so users can paste `ssh-keygen -lf` output.
 */
import { createHash, createHmac } from "crypto";
import { readFileSync } from "fs";

export function fingerprintOf(keyBlob: Buffer): string {
    return "SHA256:" + createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "");
}

export type HostKeyVerdict = "match" | "unknown" | "changed" | "revoked";

/** How known_hosts names a host: bare for port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
    return port === 22 ? host : `[${host}]:${port}`;
}

/** OpenSSH's match_pattern: `*` any run of characters, `?` any one, the rest literal. */
function wildcardMatches(pattern: string, name: string): boolean {
    const source = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
    return new RegExp(`^${source}$`).test(name);
}

/** A line's host field against the name, as OpenSSH's match_hostname: a negated pattern that matches wins over every other. */
function hostFieldMatches(field: string, name: string): boolean {
    if (field.startsWith("|1|")) {
        const [, , salt, hash] = field.split("|");
        return createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64") === hash;
    }
    let matched = false;
    for (const raw of field.toLowerCase().split(",")) {
        const negated = raw.startsWith("!");
        if (!wildcardMatches(negated ? raw.slice(1) : raw, name)) continue;
        if (negated) return false;
        matched = true;
    }
    return matched;
}

/**
 * Compares a presented key with the lines known_hosts holds for this host. A key that a line for
 * this host marks `@revoked` is refused even when another line lists it. `@cert-authority` lines
 * name a CA, not a host key: ssh2 offers no host certificates, so they never accept a plain key.
 */
export function checkKnownHosts(knownHostsText: string, host: string, port: number, keyBlob: Buffer): HostKeyVerdict {
    const name = knownHostsName(host, port).toLowerCase();
    const presented = keyBlob.toString("base64");
    let sawHost = false;
    let listed = false;
    for (const rawLine of knownHostsText.split("\n")) {
        const line = rawLine.trim();
        if (!line || line.startsWith("#")) continue;
        const fields = line.split(/\s+/);
        const marker = fields[0].startsWith("@") ? fields.shift() : undefined;
        if (fields.length < 3 || !hostFieldMatches(fields[0], name)) continue;
        if (marker === "@revoked") {
            if (fields[2] === presented) return "revoked";
            continue;
        }
        if (marker !== undefined) continue;
        sawHost = true;
        if (fields[2] === presented) listed = true;
    }
    return listed ? "match" : sawHost ? "changed" : "unknown";
}

export function readKnownHosts(path: string): string {
    try {
        return readFileSync(path, "utf8");
    } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return "";
        throw e;
    }
}
