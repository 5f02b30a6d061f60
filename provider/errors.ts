/**
 * The few kinds of failure a user meets, each carrying where it happened and a hint at the fix.
 * Messages never contain secrets: callers pass only host, domain, device and virsh's stderr.
 */
export interface ErrorContext {
    host?: string;
    domain?: string;
    device?: string;
    /** What virsh (or the remote shell) printed on stderr, trimmed. */
    stderr?: string;
}

export abstract class LibvirtLiveError extends Error {
    constructor(
        readonly summary: string,
        readonly context: ErrorContext,
        readonly hint: string,
    ) {
        super(formatMessage(summary, context, hint));
        this.name = new.target.name;
    }
}

function formatMessage(summary: string, context: ErrorContext, hint: string): string {
    const where = [
        context.host && `host ${context.host}`,
        context.domain && `domain '${context.domain}'`,
        context.device && `device ${context.device}`,
    ].filter(Boolean).join(", ");
    const lines = [where ? `${summary} (${where})` : summary];
    if (context.stderr) lines.push(`virsh said: ${context.stderr}`);
    if (hint) lines.push(`Fix: ${hint}`);
    return lines.join("\n");
}

/** The SSH server could not be reached or the connection dropped. */
export class HostUnreachableError extends LibvirtLiveError {
    /** True when a command was sent but its result was never seen: re-read state before retrying. */
    outcomeUnknown = false;
}

/** The host's key is unknown, changed, or does not match the pinned fingerprint. */
export class HostKeyError extends LibvirtLiveError {}

/** The SSH server refused the credentials. */
export class AuthenticationError extends LibvirtLiveError {}

/** virsh (or a host-side check) ran and failed. */
export class VirshError extends LibvirtLiveError {
    constructor(summary: string, context: ErrorContext, hint: string, readonly exitCode: number) {
        super(summary, context, hint);
    }
}

/** The guest did not release a device within the bound: it is still attached to the running domain. */
export class DeviceStillAttachedError extends LibvirtLiveError {}

/** An input is invalid or the change is not allowed; raised before anything changes. */
export class InputError extends LibvirtLiveError {}

/** The remote login shell failed before it ran any command of the script (a login shell that exits, or no shell at all). */
export class RemoteShellError extends LibvirtLiveError {
    constructor(summary: string, context: ErrorContext, hint: string, readonly exitCode: number) {
        super(summary, context, hint);
    }
}
