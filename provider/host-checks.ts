/**
 * Named checks that need the host, read from the answers of probes (virsh/probes.ts): is this
 * path a file or a block device, does this bridge or network exist, which other domain uses this
 * MAC, how big is the host. Each throws an InputError that names the field and the fix.
 */
import { InputError, VirshError } from "./errors";
import { MAC_OWNER_MARK } from "./virsh/probes";
import type { StepOutcome } from "./virsh/step-script";
import { hintFor, SUDO_REFUSED } from "./virsh/stderr-hints";
import type { Virsh } from "./virsh/virsh";

export type SourceKind = "file" | "block";

/**
 * A host command's answer. A failed exit is an answer ("no such file"), but sudo's own refusal
 * (or a check that never ran) is not, so it is thrown.
 */
function answered(virsh: Virsh, what: string, outcome: StepOutcome): StepOutcome & { ran: true } {
    if (!outcome.ran) {
        throw new VirshError(`the host check ${what} did not run`, virsh.context(), "run the same pulumi command again", 1);
    }
    if (outcome.exitCode !== 0 && SUDO_REFUSED.test(outcome.stderr)) {
        const stderr = outcome.stderr.trim();
        throw new VirshError(`sudo refused to run ${what} on the host (exit ${outcome.exitCode})`, virsh.context(undefined, stderr),
            hintFor(stderr, "allow this user passwordless sudo, or set connection.sudo to false"), outcome.exitCode);
    }
    return outcome;
}

export function sourceKindOnHost(virsh: Virsh, outcome: StepOutcome, path: string, field: string): SourceKind {
    const result = answered(virsh, "stat", outcome);
    const kind = result.stdout.trim();
    if (result.exitCode !== 0) {
        throw new InputError(`${field} ${path} does not exist on the host`, virsh.context(field, result.stderr.trim()),
            `create it first (qemu-img create -f raw ${path} 10G) or fix the path`);
    }
    if (kind === "block special file") return "block";
    if (kind === "regular file" || kind === "regular empty file") return "file";
    throw new InputError(`${field} ${path} is a ${kind}, not a file or block device`, virsh.context(field), "point it at an image file or a block device");
}

export function checkBridgeExists(virsh: Virsh, outcome: StepOutcome, bridge: string): void {
    if (answered(virsh, "test", outcome).exitCode !== 0) {
        throw new InputError(`source: no Linux bridge named '${bridge}' on the host`, virsh.context(`bridge ${bridge}`),
            `create it (ip link add ${bridge} type bridge && ip link set ${bridge} up) or use type "network" for a libvirt network`);
    }
}

export function checkNetworkExists(virsh: Virsh, outcome: StepOutcome, network: string): void {
    const result = answered(virsh, "virsh net-info", outcome);
    if (result.exitCode !== 0) {
        throw new InputError(`source: no libvirt network named '${network}'`, virsh.context(`network ${network}`, result.stderr.trim()),
            "`virsh net-list --all` lists them; or use type \"bridge\" for a host bridge");
    }
}

/** The domain (other than ours) whose interface has this MAC, if any. */
export function domainUsingMac(virsh: Virsh, outcome: StepOutcome, mac: string): string | undefined {
    const result = answered(virsh, "virsh domiflist", outcome);
    let owner: string | undefined;
    for (const line of result.stdout.split("\n")) {
        if (line.startsWith(MAC_OWNER_MARK)) owner = line.slice(MAC_OWNER_MARK.length);
        else if (owner !== undefined && owner !== virsh.domain && line.toLowerCase().includes(mac.toLowerCase())) return owner;
    }
    return undefined;
}

export interface HostSize {
    cpus?: number;
    memoryKiB?: number;
}

export function hostSize(virsh: Virsh, outcome: StepOutcome): HostSize {
    const info = answered(virsh, "virsh nodeinfo", outcome);
    if (info.exitCode !== 0) throw virsh.failure({ args: ["nodeinfo"] }, info);
    const cpus = Number(/^CPU\(s\):\s*(\d+)/m.exec(info.stdout)?.[1]);
    const memoryKiB = Number(/^Memory size:\s*(\d+)\s*KiB/m.exec(info.stdout)?.[1]);
    return { cpus: cpus || undefined, memoryKiB: memoryKiB || undefined };
}

/** The hypervisor's vCPU limit per guest (`virsh maxvcpus`); undefined when it names none. */
export function hypervisorMaxVcpus(virsh: Virsh, outcome: StepOutcome): number | undefined {
    const result = answered(virsh, "virsh maxvcpus", outcome);
    if (result.exitCode !== 0) throw virsh.failure({ args: ["maxvcpus"] }, result);
    const max = Number(result.stdout.trim());
    return Number.isInteger(max) && max > 0 ? max : undefined;
}

/** What the guest's balloon holds now (`dommemstat` actual), in KiB; null when it reports none. */
export function balloonActualKiB(outcome: StepOutcome): number | null {
    const match = outcome.ran ? /^actual\s+(\d+)/m.exec(outcome.stdout) : null;
    return match ? Number(match[1]) : null;
}
