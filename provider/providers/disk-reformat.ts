/**
 * AttachedDisk: a new format for the image the state names would have QEMU read its bytes in
 * another format (the guest's data as qcow2 metadata, or guest-written bytes taken as a qcow2
 * header). The diff refuses it (so preview fails, nothing runs), against the state's source and
 * format, never the last inputs: the state is at least as current (a move that failed after its
 * copy stores its source and format beside the old inputs; a refresh reads them from the XML). A
 * new format comes with a new file: a copy converted by hand, or a move.
 */
import type { AttachedDiskInputs } from "../contract";
import { ErrorContext, InputError } from "../errors";
import { containsUnknown } from "../rules/rule-table";

/**
 * The refusal of `news.format` on the file `stored.source` is, or undefined. `sameFile`: news.source
 * names that file (by default: the same path; the move's diff also passes another name of it, a
 * symbolic link or /dev/vg/lv beside /dev/mapper/vg-lv). A format unknown until apply is judged at apply.
 */
export function reformatRefusal(stored: Pick<AttachedDiskInputs, "source" | "format">, news: AttachedDiskInputs, context: ErrorContext,
    sameFile = news.source === stored.source): InputError | undefined {
    const [from, to] = [stored.format ?? "raw", news.format ?? "raw"];
    if (!sameFile || from === to || containsUnknown(to)) return undefined;
    const alias = news.source !== stored.source;
    const on = alias ? `source ${news.source}, the same file as ${stored.source},` : `the same source ${news.source}`;
    return new InputError(`format: ${from} → ${to} on ${on} would read the image's bytes as ${to}; the state names ${stored.source} as ${from} ` +
        "(the last up, an earlier move that failed after its copy, or a refresh)", context,
    `keep format "${from}"${alias ? ` and source ${stored.source}` : ""}, or convert a copy (qemu-img convert -f ${from} -O ${to} ${stored.source} NEW) ` +
        `and set source to the copy with format "${to}"`);
}
