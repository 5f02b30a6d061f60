/**
 * How one domain's commands are spelled for the host: `virsh --connect=URI …` (optionally under
 * `sudo -n`), each bounded by `timeout` on the host, every argument quoted. Options use the
 * `--name=value` form so a value that starts with `-` is never read as an option. Running them
 * is the batch's job (batch/domain-batch.ts): many commands go in one exec.
 */
import type { ErrorContext } from "../errors";
import { VirshError } from "../errors";
import { shellCommand, shellQuote } from "../quoting";
import type { RemoteHost } from "../transport/ssh-host";
import type { StepOutcome } from "./step-script";
import { hintFor } from "./stderr-hints";

/** A command of one step: virsh arguments, or a plain host command (stat, test). */
export interface Command {
    args: readonly string[];
    /** A host command instead of a virsh subcommand; same sudo, same bound. */
    host?: boolean;
    /** A host command that needs no privilege (a file system's type): never under sudo. */
    unprivileged?: boolean;
    /** Fed to the command's stdin (device XML for `attach-device --file=/dev/stdin`). */
    stdin?: string;
    /** A shorter bound than operationTimeout (a guest agent call). */
    timeoutSeconds?: number;
    /**
     * Tries, 0.5 s apart, for a step the guest must catch up with first (onlining a CPU it is still
     * being handed); only the last try's error is kept.
     */
    attempts?: number;
    /**
     * A compare before a write: the step prints nothing and succeeds only when the command's stdout
     * has this SHA-256 (hashed on the host, so the text read never travels back).
     */
    outputSha256?: string;
}

/** Exit codes of `timeout` when it stopped the command (124) or had to kill it (128 + 9). */
const TIMED_OUT_EXIT_CODES = new Set([124, 137]);
/** Seconds `timeout` waits after its TERM before it KILLs a command that ignores it. */
const KILL_GRACE_SECONDS = 5;

export class Virsh {
    constructor(
        readonly host: RemoteHost,
        readonly uri: string,
        readonly domain: string,
        readonly sudo: boolean,
        /** Bound of each command on the host, in seconds (connection.operationTimeout). */
        readonly operationTimeoutSeconds: number,
    ) {}

    /** One command as a quoted line: `timeout` first (it must be able to end sudo too), then sudo. */
    commandLine(command: Command): string {
        const argv = command.host ? command.args : ["virsh", `--connect=${this.uri}`, ...command.args];
        const line = shellCommand([
            "timeout", `--kill-after=${KILL_GRACE_SECONDS}`, String(command.timeoutSeconds ?? this.operationTimeoutSeconds),
            ...(this.sudo && !command.unprivileged ? ["sudo", "-n"] : []), ...argv,
        ]);
        if (command.outputSha256 !== undefined) return `[ "$(${line} | sha256sum)" = ${shellQuote(`${command.outputSha256}  -`)} ]`;
        const attempts = command.attempts ?? 1;
        if (attempts <= 1) return line;
        // The earlier tries are silent; the last one (if it comes to that) speaks for the step.
        return `( n=1; until [ "$n" -ge ${attempts} ] || ${line} 2>/dev/null; do n=$((n+1)); sleep 0.5; done; [ "$n" -lt ${attempts} ] || ${line} )`;
    }

    context(device?: string, stderr?: string): ErrorContext {
        return { host: this.host.label, domain: this.domain, device, stderr };
    }

    /** The error for a step that failed; a step `timeout` ended says so, with the domain's job. */
    failure(command: Command, outcome: StepOutcome & { ran: true }, options: { device?: string; hint?: string; jobInfo?: string } = {}): VirshError {
        const name = command.host ? command.args[0] : `virsh ${command.args[0]}`;
        if (timedOut(outcome)) {
            const job = options.jobInfo?.trim().replace(/\s*\n\s*/g, "; ") || "unknown";
            return new VirshError(`${name} did not answer within ${this.operationTimeoutSeconds} s and was abandoned; the domain's current job: ${job}`,
                this.context(options.device, outcome.stderr.trim() || undefined),
                "the domain is busy or QEMU hangs: `virsh domjobinfo DOMAIN` on the host shows the job; let it finish or abort it " +
                "(`virsh domjobabort DOMAIN`), raise connection.operationTimeout, or restart the guest; then run again", outcome.exitCode);
        }
        const stderr = outcome.stderr.trim() || outcome.stdout.trim();
        return new VirshError(`${name} failed (exit ${outcome.exitCode})`, this.context(options.device, stderr),
            hintFor(stderr, options.hint ?? "see virsh's message above"), outcome.exitCode);
    }
}

export function timedOut(outcome: StepOutcome): boolean {
    return outcome.ran && TIMED_OUT_EXIT_CODES.has(outcome.exitCode);
}

export function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}
