/**
 * What a domain looks like right now: its state, the live XML (while it runs) and the persistent
 * config. Read by three commands at the end of every exec of a batch (domain-batch.ts), so each
 * decision and each verification comes from the XML, never from virsh's exit code alone.
 */
import type { DomainState } from "../contract";
import { VirshError } from "../errors";
import { DomainXml, parseDomainXml } from "../xml/domain-xml";
import type { StepOutcome } from "./step-script";
import { hintFor } from "./stderr-hints";
import type { Command, Virsh } from "./virsh";

export interface DomainSnapshot {
    state: DomainState;
    running: boolean;
    /** The running domain's XML; absent while it is shut off. */
    live?: DomainXml;
    /** The persistent config (`dumpxml --inactive`). */
    config: DomainXml;
    /** The persistent config's text, for a change only `virsh define` can make (adding a virtio-mem device). */
    configText: string;
}

export function snapshotCommands(domain: string): Command[] {
    const d = `--domain=${domain}`;
    return [{ args: ["domstate", d] }, { args: ["dumpxml", d] }, { args: ["dumpxml", "--inactive", d] }];
}

/** The snapshot from the answers of snapshotCommands(); throws when the domain could not be read. */
export function snapshotFrom(virsh: Virsh, [state, live, config]: StepOutcome[]): DomainSnapshot {
    const failed = [state, live, config].find((o) => !o.ran || o.exitCode !== 0);
    if (failed) {
        const stderr = failed.ran ? failed.stderr.trim() : "";
        throw new VirshError("cannot read the domain", virsh.context(undefined, stderr),
            hintFor(stderr, "check that the domain exists and libvirtd runs"), failed.ran ? failed.exitCode : 1);
    }
    const text = (o: StepOutcome) => (o.ran ? o.stdout : "");
    const domainState = text(state).trim() as DomainState;
    const running = domainState === "running" || domainState === "paused";
    return {
        state: domainState,
        running,
        live: running ? parseDomainXml(text(live)) : undefined,
        config: parseDomainXml(text(config)),
        configText: text(config),
    };
}

export function isDomainMissing(stderr: string): boolean {
    return /failed to get domain|Domain not found/i.test(stderr);
}
