/**
 * The parts every provider shares: diff from the rule table, check from the input checks. Each
 * resource supplies its table, its checks and its create/read/update/delete.
 */
import type * as pulumi from "@pulumi/pulumi";
import { classifyChanges, needsReplacement, RuleTable } from "../rules/rule-table";
import type { CheckFailure } from "../validation";

export interface ResourceOperations<I, O> {
    table: RuleTable;
    checks: (inputs: I) => CheckFailure[];
    /** Whether the domain ran at the last operation, which picks the rule column. */
    wasRunning: (olds: O) => boolean;
    create: (inputs: I) => Promise<{ id: string; outs: O }>;
    /** The outputs as the host has them now, or undefined when the thing is gone. */
    read: (id: string, olds: O) => Promise<O | undefined>;
    update: (id: string, olds: O, news: I) => Promise<O>;
    delete: (id: string, olds: O) => Promise<void>;
}

export function toDynamicProvider<I, O>(ops: ResourceOperations<I, O>): pulumi.dynamic.ResourceProvider {
    return {
        check: async (olds: unknown, news: I): Promise<pulumi.dynamic.CheckResult> => {
            void olds;
            const failures = ops.checks(news);
            return failures.length ? { failures } : { inputs: news };
        },
        diff: async (_id: string, olds: O, news: I): Promise<pulumi.dynamic.DiffResult> => {
            const changes = classifyChanges(ops.table, olds as Record<string, unknown>, news as Record<string, unknown>, ops.wasRunning(olds));
            const replaces = changes.filter((c) => needsReplacement(c.kind)).map((c) => c.path.split(".")[0]);
            return {
                changes: changes.length > 0,
                replaces: [...new Set(replaces)],
                // The same target (vdb) or the same domain must be free before the new one comes.
                deleteBeforeReplace: replaces.length > 0,
            };
        },
        create: (inputs: I) => ops.create(inputs),
        read: async (id: string, olds: O): Promise<pulumi.dynamic.ReadResult> => {
            const outs = await ops.read(id, olds);
            return outs === undefined ? {} : { id, props: outs };
        },
        update: async (id: string, olds: O, news: I): Promise<pulumi.dynamic.UpdateResult> => ({ outs: await ops.update(id, olds, news) }),
        delete: (id: string, olds: O) => ops.delete(id, olds),
    };
}
