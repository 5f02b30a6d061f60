/**
 * Host key verification: a pinned `SHA256:…` fingerprint, or a known_hosts file (plain or hashed
 * host entries). The fingerprint format is OpenSSH's, so users can paste `ssh-keygen -lf` output.
 */
import { createHash, createHmac } from "crypto";
import { readFileSync } from "fs";

export function fingerprintOf(keyBlob: Buffer): string {
    return "SHA256:" + createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "");
}

export type HostKeyVerdict = "match" | "unknown" | "changed";

/** How known_hosts names a host: bare for port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
    return port === 22 ? host : `[${host}]:${port}`;
}

function hostPatternMatches(pattern: string, name: string): boolean {
    if (pattern.startsWith("|1|")) {
        const [, , salt, hash] = pattern.split("|");
        const digest = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64");
        return digest === hash;
    }
    return pattern.split(",").some((p) => p === name);
}

/** Compares a presented key with the entries known_hosts holds for this host. */
export function checkKnownHosts(knownHostsText: string, host: string, port: number, keyBlob: Buffer): HostKeyVerdict {
    const name = knownHostsName(host, port);
    const presented = keyBlob.toString("base64");
    let sawHost = false;
    for (const rawLine of knownHostsText.split("\n")) {
        const line = rawLine.trim();
        if (!line || line.startsWith("#") || line.startsWith("@revoked")) continue;
        const fields = line.replace(/^@cert-authority\s+/, "").split(/\s+/);
        if (fields.length < 3 || !hostPatternMatches(fields[0], name)) continue;
        sawHost = true;
        if (fields[2] === presented) return "match";
    }
    return sawHost ? "changed" : "unknown";
}

export function readKnownHosts(path: string): string {
    try {
        return readFileSync(path, "utf8");
    } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return "";
        throw e;
    }
}
