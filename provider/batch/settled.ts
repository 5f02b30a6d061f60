/**
 * A change whose answer was lost (the SSH connection dropped while it ran) may or may not have
 * happened, and running it again blindly could attach a device twice. The batch re-reads the
 * domain once the host answers; the XML decides whether the change runs again.
 */
import { HostUnreachableError } from "../errors";
import type { DomainSnapshot } from "../virsh/domain-snapshot";
import type { DomainSession } from "./domain-batch";
import type { Round, RoundRequest } from "./round";

export async function applySettled(session: DomainSession, request: RoundRequest, landed: (snapshot: DomainSnapshot) => boolean): Promise<Round> {
    const round = await session.round(request);
    if (!round.answerLost || landed(round.snapshot())) return round;
    const again = await session.round(request);
    if (!again.answerLost) return again;
    const error = new HostUnreachableError("the connection dropped twice while a change ran", session.virsh.context(),
        "the change may or may not have happened: run `pulumi refresh`, then `pulumi up` again");
    error.outcomeUnknown = true;
    throw error;
}
