/**
 * Operations on one domain run in batches. Those the engine sends together (within a short gather
 * window) form one batch; operations that arrive while it runs queue for the next. Inside a batch
 * each operation is an ordinary async function of its own, but its remote work goes through
 * `session.round()`, and a round fires only once every member still working has asked for one
 * (or is sleeping): then all their steps, the domain's read and their probes go in one exec.
 * So N devices created together cost one read and one apply, not N of each, and each member
 * still gets its own outcome and its own error. Different domains and hosts run in parallel.
 */
import type { DomainTarget } from "../session";
import { domainKey, virshFor } from "../session";
import type { Virsh } from "../virsh/virsh";
import { sleep } from "../virsh/virsh";
import { executeRound, RecentRead } from "./batch-exec";
import type { Round, RoundRequest } from "./round";

/** What an operation sees of its batch. */
export interface DomainSession {
    readonly virsh: Virsh;
    /** Targets and MACs chosen by members of this batch so far: a new device avoids them too. */
    readonly claimed: Set<string>;
    /** What members of this batch manage of the domain, by kind, each member in words: a provider refuses two owners of one kind. */
    readonly owners: Map<string, string[]>;
    /** Runs the request in the batch's next exec, with the other members' requests. */
    round(request: RoundRequest): Promise<Round>;
    /** Waits without holding back the other members' rounds. */
    sleep(ms: number): Promise<void>;
}

/** Operations arriving within this quiet gap of each other join one batch... */
const GATHER_QUIET_MS = 30;
/** ...but the first of them waits no longer than this. */
const GATHER_MAX_MS = 300;

interface Ask {
    virsh: Virsh;
    request: RoundRequest;
    resolve: (round: Round) => void;
    reject: (error: unknown) => void;
}

interface Member {
    virsh: Virsh;
    work: (session: DomainSession) => Promise<unknown>;
    resolve: (value: unknown) => void;
    reject: (error: unknown) => void;
    ask?: Ask;
    sleeping: boolean;
    done: boolean;
}

class Batch {
    readonly claimed = new Set<string>();
    readonly owners = new Map<string, string[]>();
    private inFlight = false;
    private readonly finished: Promise<void>;

    constructor(private readonly members: Member[], private readonly recentReads: Map<string, RecentRead>) {
        this.finished = Promise.all(members.map((m) => this.start(m))).then(() => undefined);
    }

    run(): Promise<void> {
        return this.finished;
    }

    private async start(member: Member): Promise<void> {
        const session: DomainSession = {
            virsh: member.virsh,
            claimed: this.claimed,
            owners: this.owners,
            round: (request) => new Promise<Round>((resolve, reject) => {
                member.ask = { virsh: member.virsh, request, resolve, reject };
                this.fireWhenReady();
            }),
            sleep: async (ms) => {
                member.sleeping = true;
                this.fireWhenReady();
                await sleep(ms);
                member.sleeping = false;
            },
        };
        try {
            member.resolve(await member.work(session));
        } catch (error) {
            member.reject(error);
        } finally {
            member.done = true;
            this.fireWhenReady();
        }
    }

    /** Fires a round once every member that is still working (and awake) waits for one. */
    private fireWhenReady(): void {
        if (this.inFlight) return;
        const working = this.members.filter((m) => !m.done && !m.sleeping);
        if (working.some((m) => !m.ask)) return;
        const asks = this.members.flatMap((m) => (m.ask ? [m.ask] : []));
        if (asks.length === 0) return;
        for (const m of this.members) m.ask = undefined;
        this.inFlight = true;
        void this.fire(asks).finally(() => {
            this.inFlight = false;
            this.fireWhenReady();
        });
    }

    /** One exec per distinct connection (members normally share one), one after the other. */
    private async fire(asks: Ask[]): Promise<void> {
        const byRunner = new Map<string, Ask[]>();
        for (const ask of asks) {
            const key = runnerKey(ask.virsh);
            byRunner.set(key, [...(byRunner.get(key) ?? []), ask]);
        }
        for (const [key, group] of byRunner) {
            const recent = this.recentReads.get(key) ?? new RecentRead();
            this.recentReads.set(key, recent);
            try {
                const rounds = await executeRound(group[0].virsh, group.map((a) => a.request), recent);
                group.forEach((ask, i) => ask.resolve(rounds[i]));
            } catch (error) {
                for (const ask of group) ask.reject(error);
            }
        }
    }
}

const runnerIds = new WeakMap<object, number>();
let runnerCount = 0;

/** Members share an exec only when the same connection, URI, sudo and bound run it. */
function runnerKey(virsh: Virsh): string {
    if (!runnerIds.has(virsh.host)) runnerIds.set(virsh.host, ++runnerCount);
    return JSON.stringify([runnerIds.get(virsh.host), virsh.uri, virsh.sudo, virsh.operationTimeoutSeconds]);
}

class DomainQueue {
    private queue: Member[] = [];
    /** Per connection (runner key): the domain's last read-only answer. */
    private readonly recentReads = new Map<string, RecentRead>();
    private firstArrival = 0;
    private lastArrival = 0;
    private draining = false;

    add(member: Member): void {
        const now = Date.now();
        if (this.queue.length === 0) this.firstArrival = now;
        this.lastArrival = now;
        this.queue.push(member);
        if (!this.draining) void this.drain();
    }

    private async drain(): Promise<void> {
        this.draining = true;
        while (this.queue.length > 0) {
            await this.gather();
            const members = this.queue;
            this.queue = [];
            await new Batch(members, this.recentReads).run();
        }
        this.draining = false;
    }

    private async gather(): Promise<void> {
        for (;;) {
            const wait = Math.min(this.lastArrival + GATHER_QUIET_MS, this.firstArrival + GATHER_MAX_MS) - Date.now();
            if (wait <= 0) return;
            await sleep(wait);
        }
    }
}

const queues = new Map<string, DomainQueue>();

/** Runs `work` in the next batch of its domain and returns its own result (or error). */
export function inDomainBatch<T>(target: DomainTarget, work: (session: DomainSession) => Promise<T>): Promise<T> {
    return inBatchOf(domainKey(target), virshFor(target), work);
}

/** inDomainBatch for a domain named by its key, with the Virsh that runs its commands. */
export function inBatchOf<T>(key: string, virsh: Virsh, work: (session: DomainSession) => Promise<T>): Promise<T> {
    let queue = queues.get(key);
    if (!queue) {
        queue = new DomainQueue();
        queues.set(key, queue);
    }
    return new Promise<T>((resolve, reject) => {
        queue?.add({ virsh, work, resolve: (v) => resolve(v as T), reject, sleeping: false, done: false });
    });
}
