/**
 * Many quoted commands in one SSH exec, with the answer of each one apart. Steps come in groups:
 * within a group a step runs only if the one before it succeeded (one resource's change, in
 * order); groups are independent (one device's failure neither stops nor hides another's).
 * Every step's stdout and stderr are framed by markers that carry a per-script nonce, so no
 * output (a guest-chosen disk serial in the XML, say) can forge the frame.
 */
import { randomBytes } from "crypto";
import { shellQuote } from "../quoting";

/** One command as the remote shell runs it, already quoted (Virsh.commandLine and friends). */
export interface ScriptStep {
    commandLine: string;
    /** Piped to the command's stdin (device XML for `attach-device --file=/dev/stdin`), byte for byte: any text, line breaks included. */
    stdin?: string;
}

export type StepOutcome =
    | { ran: true; exitCode: number; stdout: string; stderr: string }
    /** An earlier step of its group failed, so it did not run. */
    | { ran: false };

export interface StepScript {
    text: string;
    /** Splits the exec's output back into one outcome per step, group by group. */
    parse(stdout: string, stderr: string): StepOutcome[][];
}

export function buildStepScript(groups: readonly (readonly ScriptStep[])[]): StepScript {
    const tag = `pll-${randomBytes(6).toString("hex")}`;
    const begin = (id: string) => `<<${tag}-begin-${id}>>`;
    const end = (id: string) => `<<${tag}-end-${id}`;
    const lines: string[] = [];
    groups.forEach((steps, g) => {
        lines.push("rc=0");
        steps.forEach((step, s) => {
            const id = `${g}-${s}`;
            // A step reads its pipe or nothing: it must never eat what the exec channel sends. The braces
            // keep a step that is itself a pipeline (`list | while read`) reading its own pipe.
            const command = step.stdin === undefined ? `{ ${step.commandLine}; } </dev/null` : `${stdinFeed(step.stdin)} | { ${step.commandLine}; }`;
            lines.push(`if [ "$rc" -eq 0 ]; then printf '%s\\n' '${begin(id)}'; printf '%s\\n' '${begin(id)}' >&2; ${command}; rc=$?; ` +
                `printf '\\n%s-%s>>\\n' '${end(id)}' "$rc"; printf '\\n%s>>\\n' '${end(id)}' >&2; fi`);
        });
    });
    return {
        text: lines.join("\n"),
        parse(stdout: string, stderr: string): StepOutcome[][] {
            return groups.map((steps, g) => steps.map((_, s): StepOutcome => {
                const id = `${g}-${s}`;
                const out = framed(stdout, begin(id), `\n${end(id)}-`);
                const exit = out && /^(\d+)>>\n/.exec(out.after);
                if (!out || !exit) return { ran: false };
                const err = framed(stderr, begin(id), `\n${end(id)}>>\n`);
                return { ran: true, exitCode: Number(exit[1]), stdout: out.body, stderr: err?.body ?? "" };
            }));
        },
    };
}

/**
 * A shell pipeline that prints `text` exactly. The script is one exec line, where a quoted argument
 * cannot hold a line break (quoting.ts): the text travels as base64 (only [A-Za-z0-9+/=], safe in
 * single quotes) and coreutils' `base64 -d` on the host gives back its UTF-8 bytes unchanged.
 */
function stdinFeed(text: string): string {
    return `printf '%s' ${shellQuote(Buffer.from(text, "utf8").toString("base64"))} | base64 -d`;
}

/** The text between `begin` (a line of its own) and `end`, and what follows `end`. */
function framed(text: string, begin: string, end: string): { body: string; after: string } | undefined {
    const start = text.indexOf(`${begin}\n`);
    if (start < 0) return undefined;
    const from = start + begin.length + 1;
    const stop = text.indexOf(end, from);
    if (stop < 0) return undefined;
    return { body: text.slice(from, stop), after: text.slice(stop + end.length) };
}
