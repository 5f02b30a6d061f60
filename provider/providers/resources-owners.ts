/**
 * One DomainResources per domain in a batch. Members of a batch plan from the same read, each
 * alone: two DomainResources would each check their limits against what the other changes
 * unseen (a hard limit set by one, memory raised by the other), and fight over what both manage.
 * So each says what it manages before its first round, and after it (when every member has said)
 * both refuse, naming each other. Batches one after the other read what the one before left.
 */
import type { DomainResourcesInputs } from "../contract";
import type { DomainSession } from "../batch/domain-batch";
import { InputError } from "../errors";

const KIND = "DomainResources";

/** The inputs that manage something of the domain (the rest say how to apply it). */
const MANAGED = ["memory", "maxMemory", "vcpus", "maxVcpus", "hotplugMemory", "cpuTune", "memoryTune", "blkioWeight"] as const satisfies ReadonlyArray<keyof DomainResourcesInputs>;

/** The inputs' managed fields, in words ("memory, cpuTune"). */
function managedWords(inputs: DomainResourcesInputs): string {
    const fields = MANAGED.filter((field) => inputs[field] !== undefined);
    return `the one managing ${fields.length > 0 ? fields.join(", ") : "nothing"}`;
}

/** Says, before the member's first round, that it manages the domain's resources; returns its index among the batch's owners. */
export function claimDomainResources(session: DomainSession, inputs: DomainResourcesInputs): number {
    const owners = session.owners.get(KIND) ?? [];
    session.owners.set(KIND, [...owners, managedWords(inputs)]);
    return owners.length;
}

/** After the first round (every member has claimed by then): refuses when another DomainResources in this batch manages the same domain. */
export function refuseSharedDomainResources(session: DomainSession, own: number): void {
    const owners = session.owners.get(KIND) ?? [];
    if (owners.length < 2) return;
    const others = owners.filter((_, i) => i !== own);
    throw new InputError(`${owners.length} DomainResources manage domain '${session.virsh.domain}' in one update: this one is ${owners[own]}, beside ${others.join(" and ")}; ` +
        "each would plan from the same read without the other's changes (a memory limit checked against memory the other raises), so none of them changed anything",
    session.virsh.context(), "manage the domain's memory, vCPUs and tuning in one DomainResources");
}
