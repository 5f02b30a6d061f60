/**
 * The parts every provider shares: diff from the rule table, check from the input checks. Each
 * resource supplies its table, its checks and its create/read/update/delete.
 */
import type * as pulumi from "@pulumi/pulumi";
import { ChangeKind, classifyChanges, needsReplacement, RuleTable, Values } from "../rules/rule-table";
import { ErrorContext, InputError } from "../errors";
import type { CheckFailure } from "../validation";
import { asInitFailure, PartialUpdate } from "./partial-update";
import { noteDiff } from "./replacements";

/** Where the dynamic-provider server keeps the serialized provider in a resource's properties. */
const PROVIDER_KEY = "__provider";

export interface ResourceOperations<I, O> {
    table: RuleTable;
    /** `olds` are the last inputs (empty for a create): a check may compare with them (a disk never shrinks). */
    checks: (inputs: I, olds: Partial<I>) => CheckFailure[];
    /** Whether the domain ran at the last operation, which picks the rule column. */
    wasRunning: (olds: O) => boolean;
    create: (inputs: I) => Promise<{ id: string; outs: O }>;
    /** The outputs as the host has them now, or undefined when the thing is gone. */
    read: (id: string, olds: O) => Promise<O | undefined>;
    update: (id: string, olds: O, news: I) => Promise<O>;
    delete: (id: string, olds: O) => Promise<void>;
    /**
     * A change the stored outputs forbid, refused by diff (so preview fails) before anything runs:
     * check sees only the last inputs, and a partial update (partial-update.ts) stores outputs
     * beside older inputs.
     */
    refusedByState?: (stored: O, news: I) => Error | undefined;
    /** Host facts a row decides on (is anything at a disk's new source?), added to the new inputs for the diff only. */
    diffFacts?: (olds: O, news: I) => Promise<Values>;
    /**
     * Whether a replacement deletes the old one first. Default true: a device's target (vdb) must
     * be free before the new one comes. False where delete is a no-op, so a refused create leaves
     * the stack as it was instead of "deleted original" and a pending replacement.
     */
    deleteBeforeReplace?: boolean;
}

/** What the engine shows of a change: 0 an update, 1 a replacement (a reboot), 2 a replacement (the thing made anew). */
function shownAs(kind: ChangeKind | undefined): number {
    return kind === "replace" ? 2 : kind === "reboot" ? 1 : 0;
}

/**
 * The refusal of a change that would do more than the preview showed, naming each such change.
 * The preview diffed the stored state; a refresh makes it diff the domain as it is now.
 */
export function unpreviewedChange(context: ErrorContext, changes: readonly string[],
    fix = "run `pulumi preview --refresh` to see what the change does to the domain as it is now, then `pulumi up --refresh`"): InputError {
    return new InputError(`the change would do more than the preview showed, which was computed from the state stored at the last read:\n  ` +
        `${changes.join("\n  ")}\nNothing was changed`, context, fix);
}

/**
 * The apply never does more than the preview showed. The preview classified each change from the
 * stored outputs; the apply's own read (`fresh`, the outputs a refresh would report) may find the
 * domain otherwise: started by hand, its guest agent gone, a maximum changed. A change that the
 * fresh read classifies worse than the stored state did (a reboot or a replacement where the
 * preview showed an update) is refused before anything changes. For any resource whose rules
 * depend on the domain's state: call it in update, right after the first read.
 */
export function refuseUnpreviewed<I, O>(ops: Pick<ResourceOperations<I, O>, "table" | "wasRunning">, stored: O, fresh: O, news: I, context: ErrorContext): void {
    const classify = (olds: O) => classifyChanges(ops.table, olds as Record<string, unknown>, news as Record<string, unknown>, ops.wasRunning(olds));
    const previewed = new Map(classify(stored).map((c) => [c.path, c.kind]));
    const now = ops.wasRunning(fresh) ? "running" : "shut off";
    const worse = classify(fresh).filter((c) => shownAs(c.kind) > shownAs(previewed.get(c.path)))
        .map((c) => `${c.path}: the preview showed ${previewed.get(c.path) ?? "no change"}; with the domain ${now} now it is ${c.kind} (${c.rule.when})`);
    if (worse.length > 0) throw unpreviewedChange(context, worse);
}

/**
 * The engine's dynamic-provider server encodes outputs as a protobuf Struct, which throws
 * "Unexpected struct type." on an undefined value (an unset optional echoed from the inputs).
 */
function withoutUndefined<T>(value: T): T {
    if (Array.isArray(value)) return value.map((item: unknown) => withoutUndefined(item ?? null)) as T;
    if (value === null || typeof value !== "object") return value;
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, withoutUndefined(v)])) as T;
}

export function toDynamicProvider<I, O>(ops: ResourceOperations<I, O>): pulumi.dynamic.ResourceProvider {
    return {
        check: async (olds: Partial<I> | undefined, news: I): Promise<pulumi.dynamic.CheckResult> => {
            const failures = ops.checks(news, olds ?? {});
            return failures.length ? { failures } : { inputs: news };
        },
        diff: async (id: string, olds: O, news: I): Promise<pulumi.dynamic.DiffResult> => {
            const refused = ops.refusedByState?.(olds, news);
            if (refused) throw refused;
            const facts = ops.diffFacts ? await ops.diffFacts(olds, news) : {};
            const changes = classifyChanges(ops.table, olds as Record<string, unknown>, { ...news, ...facts } as Record<string, unknown>, ops.wasRunning(olds));
            const replaces = changes.filter((c) => needsReplacement(c.kind)).map((c) => c.path.split(".")[0]);
            noteDiff(id, replaces.length > 0);
            return {
                changes: changes.length > 0,
                replaces: [...new Set(replaces)],
                deleteBeforeReplace: replaces.length > 0 && ops.deleteBeforeReplace !== false,
            };
        },
        create: async (inputs: I) => {
            const { id, outs } = await ops.create(inputs);
            return { id, outs: withoutUndefined(outs) };
        },
        read: async (id: string, olds: O): Promise<pulumi.dynamic.ReadResult> => {
            const outs = await ops.read(id, olds);
            return outs === undefined ? {} : { id, props: withoutUndefined(outs) };
        },
        update: async (id: string, olds: O, news: I): Promise<pulumi.dynamic.UpdateResult> => {
            try {
                return { outs: withoutUndefined(await ops.update(id, olds, news)) };
            } catch (error) {
                // What changed is stored, with the serialized provider the server adds to every other answer.
                if (error instanceof PartialUpdate) throw asInitFailure(error, id, withoutUndefined({ ...(error.outs as Record<string, unknown>), [PROVIDER_KEY]: (news as Record<string, unknown>)[PROVIDER_KEY] }));
                throw error;
            }
        },
        delete: (id: string, olds: O) => ops.delete(id, olds),
    };
}
