/**
 * A change whose answer was lost (the SSH connection dropped while virsh ran) may or may not have
 * happened, and retrying blindly could attach a device twice. So we reconnect, let the domain XML
 * decide, and run the change again only when it did not land.
 */
import { HostUnreachableError } from "../errors";
import { DomainSnapshot, readSnapshot } from "./domain-snapshot";
import { pollUntil } from "./virsh";
import type { RunOptions, Virsh } from "./virsh";

/** How long we keep trying to reconnect to read the XML before giving the unknown outcome back. */
export const RECONNECT_BOUND_MS = 30_000;

/** Runs a change; on a lost answer, re-reads the XML and repeats it only if `landed` says it did not happen. */
export async function runSettled(virsh: Virsh, args: readonly string[], options: RunOptions,
    landed: (snapshot: DomainSnapshot) => boolean): Promise<void> {
    try {
        await virsh.run(args, options);
    } catch (error) {
        if (!isOutcomeUnknown(error)) throw error;
        const seen = await snapshotAfterReconnect(virsh);
        if (seen === undefined) throw error;
        if (!landed(seen)) await virsh.run(args, options);
    }
}

export function isOutcomeUnknown(error: unknown): error is HostUnreachableError {
    return error instanceof HostUnreachableError && error.outcomeUnknown;
}

/** The domain as it is once the host answers again; undefined if it stays unreachable. */
export function snapshotAfterReconnect(virsh: Virsh): Promise<DomainSnapshot | undefined> {
    return pollUntil(async () => {
        try {
            return await readSnapshot(virsh);
        } catch (error) {
            if (error instanceof HostUnreachableError) return undefined;
            throw error;
        }
    }, RECONNECT_BOUND_MS, 1000);
}
