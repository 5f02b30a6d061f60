/**
 * Runs `virsh -c URI …` (optionally under `sudo -n`) on a remote host. Arguments are an argv, each
 * quoted for the remote shell; options use the `--name=value` form so a value that starts with `-`
 * is never read as an option. Transient libvirt failures are retried with backoff, within a bound.
 */
import type { ErrorContext } from "../errors";
import { VirshError } from "../errors";
import { shellCommand } from "../quoting";
import type { ExecResult, RemoteHost } from "../transport/ssh-host";
import { hintFor, SUDO_REFUSED, TRANSIENT_STDERR } from "./stderr-hints";

export interface RunOptions {
    /** For messages: which device this is about. */
    device?: string;
    /** Fed to the command's stdin (device XML for `attach-device … /dev/stdin`). */
    stdin?: string;
    /** Hint used when no known stderr pattern matches. */
    hint?: string;
}

const RETRY_DELAYS_MS = [250, 500, 1000, 2000, 4000, 8000];
/** No retry starts after this: libvirt itself already waits 30 s for a held job before it fails. */
export const RETRY_BUDGET_MS = 90_000;

export class Virsh {
    constructor(
        readonly host: RemoteHost,
        readonly uri: string,
        readonly domain: string,
        private readonly sudo: boolean,
    ) {}

    /** Runs virsh and returns stdout; throws VirshError with context on a non-zero exit. */
    async run(args: readonly string[], options: RunOptions = {}): Promise<string> {
        const result = await this.attempt(args, options);
        if (result.exitCode !== 0) throw this.failure(args, result, options);
        return result.stdout;
    }

    /** Runs virsh and returns the raw result, for callers that treat some failures as answers. */
    attempt(args: readonly string[], options: RunOptions = {}): Promise<ExecResult> {
        return this.withRetries(() => this.host.exec(this.commandLine(args), options.stdin));
    }

    /** One virsh call as a quoted command line, under `sudo -n` when asked, for scripts that chain several. */
    commandLine(args: readonly string[]): string {
        return shellCommand(this.prefix(["virsh", `--connect=${this.uri}`, ...args]));
    }

    /**
     * Runs a plain host command (stat, test…) with the same quoting and sudo. Callers read a
     * failed exit as an answer ("no such file"), so sudo's own refusal is thrown instead.
     */
    async hostCommand(argv: readonly string[]): Promise<ExecResult> {
        const result = await this.host.exec(shellCommand(this.prefix(argv)));
        if (this.sudo && result.exitCode !== 0 && SUDO_REFUSED.test(result.stderr)) {
            const stderr = result.stderr.trim();
            throw new VirshError(`sudo refused to run ${argv[0]} on the host (exit ${result.exitCode})`, this.context(undefined, stderr),
                hintFor(stderr, "allow this user passwordless sudo, or set connection.sudo to false"), result.exitCode);
        }
        return result;
    }

    /**
     * Runs a script of commandLine() calls joined by quoted shell glue. Each virsh carries its own
     * sudo, so sudo need allow only virsh (as the README says), not a root shell.
     */
    shell(script: string): Promise<ExecResult> {
        return this.withRetries(() => this.host.exec(script));
    }

    context(device?: string, stderr?: string): ErrorContext {
        return { host: this.host.label, domain: this.domain, device, stderr };
    }

    failure(args: readonly string[], result: ExecResult, options: RunOptions): VirshError {
        const stderr = result.stderr.trim() || result.stdout.trim();
        return new VirshError(`virsh ${args[0]} failed (exit ${result.exitCode})`, this.context(options.device, stderr),
            hintFor(stderr, options.hint ?? "see virsh's message above"), result.exitCode);
    }

    private prefix(argv: readonly string[]): string[] {
        return this.sudo ? ["sudo", "-n", ...argv] : [...argv];
    }

    private async withRetries(exec: () => Promise<ExecResult>): Promise<ExecResult> {
        const started = Date.now();
        for (const delay of RETRY_DELAYS_MS) {
            const result = await exec();
            if (result.exitCode === 0 || !TRANSIENT_STDERR.test(result.stderr)) return result;
            if (Date.now() - started + delay >= RETRY_BUDGET_MS) return result;
            await sleep(delay);
        }
        return exec();
    }
}

export function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `check` returns a value other than undefined, or the bound passes (then undefined). */
export async function pollUntil<T>(check: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 500): Promise<T | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const value = await check();
        if (value !== undefined) return value;
        if (Date.now() >= deadline) return undefined;
        await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
    }
}
