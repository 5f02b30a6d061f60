/**
 * The engine sends operations on one domain in parallel; libvirt then fails with "cannot acquire
 * state change lock" or two disks race for one target. Operations on the same domain queue here;
 * other domains and hosts proceed in parallel.
 */
const tails = new Map<string, Promise<unknown>>();

export async function withDomainLock<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = tails.get(key) ?? Promise.resolve();
    const current = previous.then(work, work);
    const tail = current.catch(() => undefined);
    tails.set(key, tail);
    try {
        return await current;
    } finally {
        if (tails.get(key) === tail) tails.delete(key);
    }
}
