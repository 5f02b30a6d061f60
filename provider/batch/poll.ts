/**
 * Waiting on the guest is the only thing that polls (a detach it has not released, a balloon, a
 * plug, a reboot): read again every interval, sleeping as a batch member (a sleeping member does
 * not hold its batch back), until the value is the one wanted or the time is up.
 */
import type { DomainSession } from "./domain-batch";

export interface Polled<T> {
    /** The last value read. */
    value: T;
    /** Whether it is the one wanted. */
    done: boolean;
}

export async function pollUntil<T>(session: DomainSession, bound: { seconds: number; intervalMs: number }, first: T,
    read: () => Promise<T>, done: (value: T) => boolean): Promise<Polled<T>> {
    const deadline = Date.now() + bound.seconds * 1000;
    let value = first;
    while (!done(value) && Date.now() < deadline) {
        await session.sleep(Math.min(bound.intervalMs, Math.max(0, deadline - Date.now())));
        value = await read();
    }
    return { value, done: done(value) };
}
