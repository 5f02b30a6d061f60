/**
 * An update that changed the host, then failed: the engine must still store what changed (a disk
 * already moved to its new source), or the next diff would start from where the disk was and
 * the state would name an image the guest no longer uses. The dynamic-provider server sends an
 * error that carries `id` and `properties` as an initialization failure: the engine saves those
 * properties as the resource's outputs and reports the update as failed, with the error.
 */
export class PartialUpdate<O> extends Error {
    constructor(readonly outs: O, readonly done: string, readonly failure: unknown) {
        super(`${done}; then: ${failure instanceof Error ? failure.message : String(failure)}`);
        this.name = failure instanceof Error ? failure.name : "Error";
    }
}

/** The error the dynamic-provider server turns into an initialization failure: the failure itself (its type kept), with the outputs to store. */
export function asInitFailure<O>(partial: PartialUpdate<O>, id: string, properties: Record<string, unknown>): Error {
    const failure = partial.failure instanceof Error ? partial.failure : new Error(String(partial.failure));
    failure.message = partial.message;
    return Object.assign(failure, { id, properties, reasons: [partial.message] });
}
