/**
 * What one member of a batch asks of an exec, and what it gets back: the outcome of each of its
 * steps, the domain as it was read at the end of the same exec, and the host facts it probed.
 */
import type { DomainSnapshot } from "../virsh/domain-snapshot";
import { isDomainMissing, snapshotFrom } from "../virsh/domain-snapshot";
import type { Probe } from "../virsh/probes";
import { probeKey } from "../virsh/probes";
import type { StepOutcome } from "../virsh/step-script";
import type { Command, Virsh } from "../virsh/virsh";
import { VirshError } from "../errors";

/** Where a change goes in the batch's exec: removals free targets before additions take them. */
export enum ChangeOrder { Removal = 0, Resize = 1, Addition = 2 }

export interface RoundRequest {
    /** One resource's change, in order: a step runs only if the one before it succeeded. */
    steps?: Command[];
    /** Host facts to read along with the domain. */
    probes?: Probe[];
    order?: ChangeOrder;
    /**
     * A read for `pulumi refresh` of this resource (its id): a refresh read of moments ago, with no
     * change since and not yet used for this resource, will do. The engine refreshes --parallel at a
     * time; each later wave then costs no exec of its own, while a resource read twice (a change
     * made by hand in between) is read anew.
     */
    refreshOf?: string;
}

export class Round {
    constructor(
        private readonly virsh: Virsh,
        /** One outcome per requested step; all `{ ran: false }` when the answer was lost. */
        readonly steps: StepOutcome[],
        /**
         * The first step whose outcome is unknown (the connection dropped while the steps ran, or
         * libvirtd died during that call): it and those after it may or may not have happened.
         */
        readonly unknownFrom: number | undefined,
        private readonly reads: StepOutcome[],
        private readonly probes: ReadonlyMap<string, StepOutcome>,
        /** What `virsh domjobinfo` said after a step was abandoned at operationTimeout. */
        readonly jobInfo: string | undefined,
    ) {}

    /** Some step may or may not have happened: the XML decides whether it runs again. */
    get answerLost(): boolean {
        return this.unknownFrom !== undefined;
    }

    /** This round as the tail of a request whose first steps succeeded in an earlier round. */
    after(earlier: readonly StepOutcome[]): Round {
        return this.withSteps([...earlier, ...this.steps], this.unknownFrom === undefined ? undefined : earlier.length + this.unknownFrom);
    }

    /** This round once the XML showed its change landed: the steps of unknown outcome count as not run, not as failed. */
    landed(): Round {
        const from = this.unknownFrom ?? this.steps.length;
        return this.withSteps(this.steps.map((o, i) => (i < from ? o : { ran: false })), this.unknownFrom);
    }

    private withSteps(steps: StepOutcome[], unknownFrom: number | undefined): Round {
        return new Round(this.virsh, steps, unknownFrom, this.reads, this.probes, this.jobInfo);
    }

    /** The domain as read after the steps; throws when it cannot be read (or does not exist). */
    snapshot(): DomainSnapshot {
        return snapshotFrom(this.virsh, this.reads);
    }

    /** The domain as read after the steps, or undefined when it no longer exists. */
    snapshotIfExists(): DomainSnapshot | undefined {
        try {
            return this.snapshot();
        } catch (error) {
            if (error instanceof VirshError && isDomainMissing(error.context.stderr ?? "")) return undefined;
            throw error;
        }
    }

    probe(probe: Probe): StepOutcome {
        return this.probes.get(probeKey(probe)) ?? { ran: false };
    }

    /** The error of the first failed step, with its context; undefined when all ran and succeeded. */
    failure(request: RoundRequest, options: { device?: string; hint?: string } = {}): VirshError | undefined {
        const index = this.steps.findIndex((o) => o.ran && o.exitCode !== 0);
        const failed = this.steps[index];
        if (!failed?.ran || !request.steps) return undefined;
        return this.virsh.failure(request.steps[index], failed, { ...options, jobInfo: this.jobInfo });
    }
}
