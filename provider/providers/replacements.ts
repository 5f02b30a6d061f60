/**
 * Which resources are being replaced, in this provider process. The engine calls `diff` right
 * before a replacement's `delete`, in the same process, so a delete can tell a re-plug (the
 * device goes and comes back, its data must stay) from a real destroy (no replacing diff). And
 * which instance of each device a create of this process made last: a replacement the engine
 * makes without our diff (`pulumi up --replace`, a rename without an alias) creates the new
 * instance first, and it takes the attached device over, so the old instance's delete must leave
 * the device alone.
 */

const replacing = new Set<string>();
/** Device id → the instance (a create's own token) that made or took over the device last. */
const holders = new Map<string, string>();

export function noteDiff(id: string, replaces: boolean): void {
    if (replaces) replacing.add(id);
    else replacing.delete(id);
}

/** True once for a delete that is the first half of a replacement of `id`. */
export function takeReplacement(id: string): boolean {
    return replacing.delete(id);
}

/** The device `id` is now held by `instance` (a create of this process made it, or took it over). */
export function noteHolder(id: string, instance: string): void {
    holders.set(id, instance);
}

/**
 * True when another instance than `instance` holds the device `id` in this process, whatever its
 * source: a delete detaches by target, so a holder of that target with another source is another
 * resource's disk, and the delete must leave it alone too.
 */
export function heldByAnother(id: string, instance: unknown): boolean {
    const holder = holders.get(id);
    return holder !== undefined && holder !== instance;
}

/** The device is gone: nobody holds it. */
export function noteReleased(id: string): void {
    holders.delete(id);
}
