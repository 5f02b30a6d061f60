/**
 * What a domain looks like right now, read in one SSH round trip: its state, the live XML (while it
 * runs) and the persistent config. Every provider decides and verifies from a snapshot, never from
 * virsh's exit code alone.
 */
import type { DomainState } from "../contract";
import { VirshError } from "../errors";
import { shellCommand } from "../quoting";
import { DomainXml, parseDomainXml } from "../xml/domain-xml";
import { hintFor } from "./stderr-hints";
import type { Virsh } from "./virsh";

export interface DomainSnapshot {
    state: DomainState;
    running: boolean;
    /** The running domain's XML; absent while it is shut off. */
    live?: DomainXml;
    /** The persistent config (`dumpxml --inactive`). */
    config: DomainXml;
}

const SEPARATOR = "--pulumi-libvirt-live--";

export async function readSnapshot(virsh: Virsh): Promise<DomainSnapshot> {
    const virshArgv = (...args: string[]): string => virsh.commandLine(args);
    const domain = `--domain=${virsh.domain}`;
    // One exec: domstate, live XML, config XML, separated by a marker line.
    const script = [virshArgv("domstate", domain), virshArgv("dumpxml", domain), virshArgv("dumpxml", "--inactive", domain)]
        .join(` && printf '\\n%s\\n' ${shellCommand([SEPARATOR])} && `);
    const result = await virsh.shell(script);
    if (result.exitCode !== 0) {
        const stderr = result.stderr.trim();
        throw new VirshError("cannot read the domain", virsh.context(undefined, stderr),
            hintFor(stderr, "check that the domain exists and libvirtd runs"), result.exitCode);
    }
    const [stateText, liveXml, configXml] = result.stdout.split(`\n${SEPARATOR}\n`);
    const state = stateText.trim() as DomainState;
    const running = state === "running" || state === "paused";
    return {
        state,
        running,
        live: running ? parseDomainXml(liveXml) : undefined,
        config: parseDomainXml(configXml),
    };
}

/** True when the error says the domain does not exist (read then reports the resource gone). */
export function isDomainMissing(error: unknown): boolean {
    return error instanceof VirshError && /failed to get domain|Domain not found/i.test(error.context.stderr ?? "");
}

/** A snapshot, or undefined when the domain no longer exists (read then reports the resource gone). */
export async function readSnapshotIfExists(virsh: Virsh): Promise<DomainSnapshot | undefined> {
    try {
        return await readSnapshot(virsh);
    } catch (error) {
        if (isDomainMissing(error)) return undefined;
        throw error;
    }
}
