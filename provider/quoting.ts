/**
 * Every argument reaches the remote shell single-quoted, never spliced. A value with NUL or a line
 * break cannot be passed safely through an SSH exec line, so it is refused.
 */
import { InputError } from "./errors";

export function assertQuotable(value: string, what: string): void {
    if (/[\0\n\r]/.test(value)) {
        throw new InputError(`${what} contains a NUL or line break, which cannot be passed to the host safely`, {},
            `remove the control character from ${what}`);
    }
}

export function shellQuote(value: string): string {
    assertQuotable(value, "argument");
    return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Joins an argument vector into one command line for the remote POSIX shell. */
export function shellCommand(argv: readonly string[]): string {
    return argv.map(shellQuote).join(" ");
}
