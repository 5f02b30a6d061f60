/**
 * Input checks that need no host: run by `check`, so `pulumi preview` reports bad input before
 * anything changes. Values unknown during preview are skipped (they are checked again at apply).
 */
import { UNKNOWN_VALUE } from "./rules/rule-table";
import type { InputError } from "./errors";
import { parseProxyJump } from "./transport/proxy-jump";
import { parseDiskSizeBytes, parseMemoryKiB } from "./units";

export interface CheckFailure {
    property: string;
    reason: string;
}

type Check = (value: unknown) => string | undefined;

export class InputChecks {
    readonly failures: CheckFailure[] = [];

    constructor(private readonly inputs: Record<string, unknown>) {}

    /** Runs `check` on the value at `path` when it is present and known. */
    field(path: string, check: Check, required = false): this {
        const value = path.split(".").reduce<unknown>(
            (v, key) => (v !== null && typeof v === "object" ? (v as Record<string, unknown>)[key] : undefined), this.inputs);
        if (value === UNKNOWN_VALUE) return this;
        if (value === undefined || value === null) {
            if (required) this.failures.push({ property: path, reason: `${path} is required` });
            return this;
        }
        const reason = check(value);
        if (reason) this.failures.push({ property: path, reason: `${path}: ${reason}` });
        return this;
    }
}

export const isText: Check = (v) => {
    if (typeof v !== "string" || v.length === 0) return "must be a non-empty string";
    if (/[\0\n\r]/.test(v)) return "contains a NUL or line break, which cannot be passed to the host safely";
    return undefined;
};

/**
 * Text that reaches libvirt (a path, a name, a serial in the domain XML): the XML reader trims white
 * space at either end, so such a value would read back as another and every run would show a change.
 */
function surroundingSpace(v: string): string | undefined {
    return v.trim() === v ? undefined
        : `${JSON.stringify(v)} starts or ends with white space, which libvirt's XML does not keep (every pulumi up would then show a replacement): write ${JSON.stringify(v.trim())}`;
}

export const isXmlText: Check = (v) => isText(v) ?? surroundingSpace(String(v));

export function oneOf(...allowed: string[]): Check {
    return (v) => (typeof v === "string" && allowed.includes(v) ? undefined : `must be one of ${allowed.map((a) => `"${a}"`).join(", ")}`);
}

export function integerAtLeast(min: number): Check {
    return (v) => (typeof v === "number" && Number.isInteger(v) && v >= min ? undefined : `must be a whole number of at least ${min} (got ${JSON.stringify(v)})`);
}

export const isBoolean: Check = (v) => (typeof v === "boolean" ? undefined : "must be true or false");

export const isMemorySize: Check = (v) => {
    if (typeof v !== "string" && typeof v !== "number") return "must be a size like \"512MiB\" or a number of MiB";
    try {
        parseMemoryKiB(v, "size");
        return undefined;
    } catch (e) {
        return (e as Error).message.replace(/^size: /, "");
    }
};

export const isDiskSize: Check = (v) => {
    if (typeof v !== "string" && typeof v !== "number") return "must be a size like \"64MiB\" or a number of MiB";
    try {
        parseDiskSizeBytes(v, "size");
        return undefined;
    } catch (e) {
        return (e as Error).message.replace(/^size: /, "");
    }
};

export const isAbsolutePath: Check = (v) => isXmlText(v) ?? (String(v).startsWith("/") ? undefined : "must be an absolute path on the host");

export const isMac: Check = (v) => {
    if (typeof v !== "string" || !/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(v)) return "must look like 52:54:00:12:34:56";
    return parseInt(v.slice(0, 2), 16) & 1 ? "is a multicast address; the first octet must be even" : undefined;
};

/** libvirt refuses a disk serial with anything else ("contains unsafe characters"). */
export const isSerial: Check = (v) =>
    typeof v === "string" && /^[A-Za-z0-9_ .+-]{1,20}$/.test(v) ? surroundingSpace(v) : "may hold only letters, digits, space and _ . + - (at most 20)";

export const isFingerprint: Check = (v) =>
    typeof v === "string" && /^SHA256:[A-Za-z0-9+/]{43}$/.test(v) ? undefined : "must be an OpenSSH fingerprint like SHA256:… (ssh-keygen -lf)";

/**
 * virsh looks a --domain up as an ID first (what strtol reads as a number >= 0), then as a UUID (36
 * characters, 32 hex digits with "-" or " " between them), then as a name: a domain named "5" would
 * be read, and changed, as whichever running domain has ID 5.
 */
export const isDomainName: Check = (v) => {
    const text = isXmlText(v);
    if (text !== undefined) return text;
    const name = String(v);
    const asId = /^[+-]?[0-9]+$/.test(name) && Number(name) >= 0 && Number(name) <= 2 ** 31 - 1;
    const asUuid = name.length === 36 && /^[0-9a-f]{32}$/i.test(name.replace(/[- ]/g, ""));
    const readAs = asId ? "a domain ID" : asUuid ? "a domain UUID" : undefined;
    return readAs && `${JSON.stringify(name)} is read by virsh as ${readAs} before it is read as a name, so another domain could be changed: ` +
        "give the domain's name; if that is its name, rename it to one that is neither a number nor a UUID (`virsh domrename OLD NEW` while it is shut off)";
};

/** Checks shared by every resource: where the domain is and how to reach it. */
export function placementChecks(inputs: Record<string, unknown>): InputChecks {
    return new InputChecks(inputs)
        .field("domain", isDomainName, true)
        .field("connection", (v) => (typeof v === "object" ? undefined : "must be an object"), true)
        .field("connection.host", isText, true)
        .field("connection.user", isText)
        .field("connection.port", (v) => integerAtLeast(1)(v) ?? (Number(v) > 65535 ? "must be at most 65535" : undefined))
        .field("connection.uri", isXmlText)
        .field("connection.privateKey", (v) => (typeof v === "string" ? undefined : "must be a string"))
        .field("connection.privateKeyPassphrase", (v) => (typeof v === "string" ? undefined : "must be a string"))
        .field("connection.password", (v) => (typeof v === "string" ? undefined : "must be a string"))
        .field("connection.hostKey", isFingerprint)
        .field("connection.knownHostsPath", isText)
        .field("connection.insecureIgnoreHostKey", isBoolean)
        .field("connection.sudo", isBoolean)
        .field("connection.connectTimeout", integerAtLeast(1))
        .field("connection.operationTimeout", integerAtLeast(1))
        .field("connection.agent", isText)
        .field("connection.sshConfig", (v) => (v === false ? undefined : isText(v) && "must be a file path or false"))
        .field("connection.proxyJump", isProxyJump);
}

const isPort: Check = (v) => integerAtLeast(1)(v) ?? (Number(v) > 65535 ? "must be at most 65535" : undefined);

/** An OpenSSH ProxyJump string, or a list of jump host objects. */
export const isProxyJump: Check = (v) => {
    if (typeof v === "string") {
        if (/[\0\r\n]/.test(v)) return "contains a NUL or line break, which no jump host can hold";
        try {
            parseProxyJump(v);
            return undefined;
        } catch (error) {
            return (error as InputError).summary.replace(/^connection\.proxyJump /, "");
        }
    }
    if (!Array.isArray(v)) return "must be a string like \"user@bastion:22,user@inner\" or a list of { host, port, user, … }";
    for (const [i, hop] of v.entries()) {
        if (hop === null || typeof hop !== "object") return `hop ${i + 1} must be an object { host, port, user, … }`;
        const fields = hop as Record<string, unknown>;
        const problem = isText(fields.host) ?? (fields.port === undefined ? undefined : isPort(fields.port))
            ?? (fields.user === undefined ? undefined : isText(fields.user))
            ?? (fields.hostKey === undefined ? undefined : isFingerprint(fields.hostKey))
            ?? (fields.knownHostsPath === undefined ? undefined : isText(fields.knownHostsPath))
            ?? (fields.agent === undefined ? undefined : isText(fields.agent));
        if (problem) return `hop ${i + 1} (${JSON.stringify(fields.host)}): ${problem}`;
    }
    return undefined;
};
