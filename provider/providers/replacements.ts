/**
 * Which resources are being replaced, in this provider process. The engine calls `diff` right
 * before a replacement's `delete`, in the same process, so a delete can tell a re-plug (the
 * device goes and comes back, its data must stay) from a real destroy (no replacing diff).
 */

const replacing = new Set<string>();

/** What the last diff of `id` said: a replacement or not (a later diff without one clears it). */
export function noteDiff(id: string, replaces: boolean): void {
    if (replaces) replacing.add(id);
    else replacing.delete(id);
}

/** True once for a delete that is the first half of a replacement of `id`. */
export function takeReplacement(id: string): boolean {
    return replacing.delete(id);
}
