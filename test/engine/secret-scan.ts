/**
 * Looks for a private key in text the engine produced: the key's base64 body lines, as written
 * and JSON-escaped. Engine events are classified, because one leak is not ours to fix:
 * @pulumi/pulumi's own runtime logs every RegisterResource/ReadResource response at debug
 * severity ("RegisterResource RPC finished: … resp: …"), secret outputs in plaintext included,
 * and the engine masks only values it knows as secrets (secret stack config), not a
 * `pulumi.secret(…)` made in the program.
 */
import type * as AutomationModule from "@pulumi/pulumi/automation";

export function keyFragments(key: string): string[] {
    const lines = key.split("\n").map((l) => l.trim()).filter((l) => l.length >= 16 && !l.startsWith("-----"));
    if (!lines.length) throw new Error("the key has no body lines to look for");
    return lines;
}

/** The fragments that occur in `text`. */
export function leaksIn(text: string, fragments: readonly string[]): string[] {
    return fragments.filter((f) => text.includes(f) || text.includes(JSON.stringify(f).slice(1, -1)));
}

/** The SDK runtime's own debug line about an RPC response (see the file comment). */
function isRuntimeRpcDebug(event: AutomationModule.EngineEvent): boolean {
    const diag = event.diagnosticEvent;
    // The typings list no "debug" severity, but the event log carries it.
    const severity: string | undefined = diag?.severity;
    return severity === "debug" && diag !== undefined && /^(RegisterResource|ReadResource|RegisterResourceOutputs) RPC finished/.test(diag.message);
}

export interface EventLeaks {
    /** Events other than the runtime's RPC debug lines that hold a fragment: must be none. */
    others: string[];
    /** Runtime RPC debug lines holding a fragment (upstream behaviour, reported). */
    runtimeDebug: number;
}

export function eventLeaks(events: readonly AutomationModule.EngineEvent[], fragments: readonly string[]): EventLeaks {
    const result: EventLeaks = { others: [], runtimeDebug: 0 };
    for (const event of events) {
        if (!leaksIn(JSON.stringify(event), fragments).length) continue;
        if (isRuntimeRpcDebug(event)) result.runtimeDebug++;
        else result.others.push(JSON.stringify(event).slice(0, 300));
    }
    return result;
}
