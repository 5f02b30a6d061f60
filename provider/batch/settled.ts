/**
 * A change whose answer was lost (the SSH connection dropped while it ran, or libvirtd died during
 * the call) may or may not have happened, and running it again blindly could attach a device
 * twice. The batch re-reads the domain once the host answers; the XML decides whether the change
 * runs again, and then only from the step whose outcome is unknown (the ones before it succeeded).
 */
import { HostUnreachableError } from "../errors";
import type { DomainSnapshot } from "../virsh/domain-snapshot";
import type { DomainSession } from "./domain-batch";
import type { Round, RoundRequest } from "./round";

export async function applySettled(session: DomainSession, request: RoundRequest, landed: (snapshot: DomainSnapshot) => boolean): Promise<Round> {
    const round = await session.round(request);
    if (round.unknownFrom === undefined) return round;
    if (landed(round.snapshot())) return round.landed();
    const done = round.steps.slice(0, round.unknownFrom);
    const again = await session.round({ ...request, steps: request.steps?.slice(done.length) });
    if (!again.answerLost) return again.after(done);
    const error = new HostUnreachableError("the answer to a change was lost twice (the SSH connection dropped, or libvirtd died during the call)", session.virsh.context(),
        "the change may or may not have happened: run `pulumi refresh`, then `pulumi up` again");
    error.outcomeUnknown = true;
    throw error;
}
