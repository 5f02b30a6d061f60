/**
 * AttachedInterface: a NIC on a host bridge or a libvirt network, found again by its MAC. The
 * source and the link state change live; everything else replaces the NIC. A MAC not given is
 * chosen here, as libvirt would (52:54:00 and three random octets): known before the attach, it
 * finds the NIC again after a lost answer and keeps NICs attached together apart.
 */
import { randomBytes } from "crypto";
import type { AttachedInterfaceInputs, AttachedInterfaceOutputs } from "../contract";
import { DomainSession, inDomainBatch } from "../batch/domain-batch";
import { ChangeOrder, Round } from "../batch/round";
import { applySettled } from "../batch/settled";
import { HostUnreachableError, InputError, VirshError } from "../errors";
import { checkBridgeExists, checkNetworkExists, domainUsingMac } from "../host-checks";
import { ATTACHED_INTERFACE_RULES } from "../rules/attached-interface-rules";
import { domainKey } from "../session";
import { integerAtLeast, isMac, isXmlText, oneOf, placementChecks } from "../validation";
import type { DomainSnapshot } from "../virsh/domain-snapshot";
import type { Probe } from "../virsh/probes";
import { Command, timedOut, Virsh } from "../virsh/virsh";
import { buildInterfaceXml } from "../xml/interface-xml";
import { attachFlags, interfaceAt, readHotPlugged } from "./device-lookup";
import { DeviceLookup, detachAndWait, removeDevice } from "./device-removal";
import { AttachableDevice, attachMissingHalves, replugOrRestore, rollBackPartialAttach } from "./partial-attach";
import { toDynamicProvider } from "./provider-kit";

const MAC_OWNERS: Probe = { kind: "macOwners" };

function interfaceXml(inputs: AttachedInterfaceInputs, mac: string): string {
    return buildInterfaceXml({
        type: inputs.type,
        [inputs.type]: inputs.source,
        mac,
        model: inputs.model ?? "virtio",
        linkState: inputs.linkState === "down" ? "down" : undefined,
    });
}

function outputsFrom(inputs: AttachedInterfaceInputs, mac: string, snapshot: DomainSnapshot): AttachedInterfaceOutputs {
    const live = interfaceAt(snapshot, "live", mac);
    const config = interfaceAt(snapshot, "config", mac);
    const seen = live ?? config ?? {};
    // A NIC on a libvirt network whose forward mode is bridge reads as type 'bridge' in the live XML; its source still names the network.
    const type = typeof seen.network === "string" ? "network" : seen.type === "bridge" ? "bridge" : inputs.type;
    const source = seen[type];
    return {
        ...inputs,
        type,
        source: typeof source === "string" ? source : inputs.source,
        mac: mac.toLowerCase(),
        model: typeof seen.model === "string" ? seen.model : inputs.model ?? "virtio",
        linkState: seen.linkState === "down" ? "down" : "up",
        attachedLive: live !== undefined,
        attachedConfig: config !== undefined,
        domainRunning: snapshot.running,
    };
}

function sourceProbe(inputs: AttachedInterfaceInputs): Probe {
    return inputs.type === "bridge" ? { kind: "bridge", name: inputs.source } : { kind: "network", name: inputs.source };
}

function checkSource(virsh: Virsh, round: Round, inputs: AttachedInterfaceInputs): void {
    const outcome = round.probe(sourceProbe(inputs));
    if (inputs.type === "bridge") checkBridgeExists(virsh, outcome, inputs.source);
    else checkNetworkExists(virsh, outcome, inputs.source);
}

function macsOf(snapshot: DomainSnapshot): Set<string> {
    return new Set([...(snapshot.live?.interfaces ?? []), ...snapshot.config.interfaces].map((i) => String(i.mac).toLowerCase()));
}

/** 52:54:00 (QEMU's prefix, as libvirt picks) and three random octets, unused in this domain and batch. */
function newMac(taken: ReadonlySet<string>): string {
    for (;;) {
        const mac = ["52", "54", "00", ...[...randomBytes(3)].map((b) => b.toString(16).padStart(2, "0"))].join(":");
        if (!taken.has(mac)) return mac;
    }
}

function notAttached(virsh: Virsh, outs: AttachedInterfaceOutputs, running: boolean, what: string): VirshError | undefined {
    if (outs.attachedConfig && (!running || outs.attachedLive)) return undefined;
    return new VirshError(`virsh reported success but interface ${outs.mac} is not in the ${outs.attachedConfig ? "live XML" : "persistent config"} after ${what}`,
        virsh.context(`interface ${outs.mac}`), "run pulumi refresh, then pulumi up again", 1);
}

function verifyAttached(virsh: Virsh, outs: AttachedInterfaceOutputs, running: boolean, what: string): void {
    const problem = notAttached(virsh, outs, running, what);
    if (problem) throw problem;
}

function lookup(nic: Pick<AttachedInterfaceOutputs, "domain" | "type" | "mac">): DeviceLookup {
    return {
        label: `interface ${nic.mac}`,
        present: (snapshot, where) => interfaceAt(snapshot, where, nic.mac) !== undefined,
        detachArgs: ["detach-interface", `--domain=${nic.domain}`, `--type=${nic.type}`, `--mac=${nic.mac}`],
        // virsh matches --type against each half's own XML, where a network NIC may read as a bridge.
        detachArgsIn: (snapshot, where) => ["detach-interface", `--domain=${nic.domain}`,
            `--type=${interfaceAt(snapshot, where, nic.mac)?.type ?? nic.type}`, `--mac=${nic.mac}`],
    };
}

function nicDevice(nic: AttachedInterfaceInputs, mac: string): AttachableDevice {
    return { ...lookup({ domain: nic.domain, type: nic.type, mac }), xml: interfaceXml(nic, mac) };
}

/** How to take over, or remove, a NIC left on the domain with this MAC. */
function adoptHint(virsh: Virsh, nic: AttachedInterfaceInputs, mac: string): string {
    return `to manage it, set mac: "${mac}" on this resource and run pulumi up again (it is found by its MAC and adopted); ` +
        `to remove it: virsh detach-interface ${virsh.domain} --type ${nic.type} --mac ${mac} --live --config`;
}

/**
 * Attaches the NIC; a failure after part of it landed detaches that part again (a rerun without
 * a given MAC would choose another and leave this one behind). An unknown outcome names the MAC.
 */
async function attach(session: DomainSession, inputs: AttachedInterfaceInputs, mac: string, before: DomainSnapshot): Promise<{ outs: AttachedInterfaceOutputs; after: DomainSnapshot }> {
    const { virsh } = session;
    const device = nicDevice(inputs, mac);
    const request = {
        steps: [{ args: ["attach-device", `--domain=${virsh.domain}`, "--file=/dev/stdin", ...attachFlags(before)], stdin: device.xml }],
        order: ChangeOrder.Addition,
    };
    let round: Round;
    try {
        round = await applySettled(session, request, (s) => macsOf(s).has(mac));
    } catch (error) {
        if (!(error instanceof HostUnreachableError && error.outcomeUnknown)) throw error;
        const unknown = new HostUnreachableError(`${error.summary}: interface ${mac} on ${inputs.source} may or may not have been attached`,
            virsh.context(device.label), `once the host answers, check \`virsh domiflist ${virsh.domain}\`; if it is there, ${adoptHint(virsh, inputs, mac)}`);
        unknown.outcomeUnknown = true;
        throw unknown;
    }
    const after = round.snapshot();
    const outs = outputsFrom(inputs, mac, after);
    const problem = round.failure(request, { device: `interface ${mac} on ${inputs.source}` }) ?? notAttached(virsh, outs, after.running, "attach");
    const [cut] = round.steps;
    if (problem && cut?.ran && timedOut(cut)) {
        // Abandoned at operationTimeout: libvirt may still finish it (a rollback would queue behind it), and a rerun would choose another MAC.
        throw new VirshError(`${problem.summary}; libvirt may still finish the attach, so interface ${mac} may yet appear`, problem.context,
            `let the domain's job end (virsh domjobinfo ${virsh.domain}), then check \`virsh domiflist ${virsh.domain}\`; if it is there, ${adoptHint(virsh, inputs, mac)}`,
            problem.exitCode);
    }
    if (problem) throw await rollBackPartialAttach(session, problem, device, after, adoptHint(virsh, inputs, mac), inputs.detachTimeout);
    return { outs, after };
}

/** A NIC with the given MAC is adopted only where each half that has it holds the NIC asked for, once. */
function refuseOtherNic(virsh: Virsh, inputs: AttachedInterfaceInputs, mac: string, snapshot: DomainSnapshot): void {
    for (const where of ["live", "config"] as const) {
        const half = where === "live" ? "running domain" : "persistent config";
        const count = (snapshot[where]?.interfaces ?? []).filter((i) => String(i.mac).toLowerCase() === mac).length;
        if (count > 1) {
            // An attach run twice (an earlier attempt still running when a lost answer was read back): which one is ours is unknown.
            throw new InputError(`mac ${mac} is on ${count} interfaces in this domain's ${where === "live" ? "live XML" : "persistent config"}`, virsh.context(`interface ${mac}`),
                `remove all but one by hand (virsh detach-device ${virsh.domain} with the extra one's <interface> XML from virsh dumpxml, its <address> included, --live --config), then run pulumi up again`);
        }
        const seen = interfaceAt(snapshot, where, mac);
        if (!seen) continue;
        const model = typeof seen.model === "string" ? seen.model : "virtio";
        const kind = seen.type === "network" ? "network" : "bridge";
        const source = String(seen[kind] ?? "");
        if (seen.type === inputs.type && source === inputs.source && model === (inputs.model ?? "virtio")) continue;
        throw new InputError(`mac ${mac} is already used by this domain's ${model} interface on ${seen.type} '${source}' (in its ${half})`,
            virsh.context(`interface ${mac}`),
            "choose another MAC (52:54:00:xx:xx:xx) or leave mac unset; or, to manage that interface, give its type, source and model");
    }
}

function create(inputs: AttachedInterfaceInputs): Promise<{ id: string; outs: AttachedInterfaceOutputs }> {
    const given = inputs.mac?.toLowerCase();
    return inDomainBatch(inputs, async (session) => {
        const { virsh } = session;
        const read = await session.round({ probes: [sourceProbe(inputs), ...(given ? [MAC_OWNERS] : [])] });
        checkSource(virsh, read, inputs);
        const before = read.snapshot();
        if (given && macsOf(before).has(given)) {
            // Ours from an earlier attempt whose answer was lost, or attached by hand: adopted when
            // it is the NIC asked for, in both halves; a half it lacks is attached (same MAC).
            refuseOtherNic(virsh, inputs, given, before);
            const after = await attachMissingHalves(session, before, nicDevice(inputs, given));
            const outs = outputsFrom(inputs, given, after);
            verifyAttached(virsh, outs, after.running, "adopting it");
            return { id: `${domainKey(inputs)}#interface/${given}`, outs };
        }
        if (given) {
            const user = domainUsingMac(virsh, read.probe(MAC_OWNERS), given);
            if (user || session.claimed.has(given)) {
                throw new InputError(`mac ${given} is already used by ${user ? `domain '${user}'` : "another interface of this run"}`, virsh.context(`interface ${given}`),
                    "choose another MAC (52:54:00:xx:xx:xx), or leave mac unset for one to be chosen");
            }
        }
        const mac = given ?? newMac(new Set([...macsOf(before), ...session.claimed]));
        session.claimed.add(mac);
        const { outs } = await attach(session, inputs, mac, before);
        return { id: `${domainKey(inputs)}#interface/${mac}`, outs };
    });
}

/** A new source through update-device (re-attached with the same MAC if libvirt refuses), then the link state. */
function update(olds: AttachedInterfaceOutputs, news: AttachedInterfaceInputs): Promise<AttachedInterfaceOutputs> {
    const moving = news.source !== olds.source;
    const wantLink = news.linkState ?? "up";
    const desired = { ...news, mac: olds.mac };
    return inDomainBatch(news, async (session) => {
        const { virsh } = session;
        const read = await session.round({ probes: moving ? [sourceProbe(news)] : [] });
        if (moving) checkSource(virsh, read, news);
        // A half removed by hand comes back first (same MAC, as it is now), so the change below reaches both.
        const before = await attachMissingHalves(session, read.snapshot(), nicDevice(outputsFrom(olds, olds.mac, read.snapshot()), olds.mac));
        const link = ["domif-setlink", `--domain=${virsh.domain}`, `--interface=${olds.mac}`, `--state=${wantLink}`];
        const steps: Command[] = [
            ...(moving ? [{ args: ["update-device", `--domain=${virsh.domain}`, "--file=/dev/stdin", ...attachFlags(before)], stdin: interfaceXml(desired, olds.mac) }] : []),
            ...(wantLink !== olds.linkState ? [...(before.running ? [{ args: link }] : []), { args: [...link, "--config"] }] : []),
        ];
        const request = { steps, order: ChangeOrder.Resize };
        const done = (s: DomainSnapshot) => {
            const outs = outputsFrom(desired, olds.mac, s);
            return outs.source === news.source && outs.linkState === wantLink;
        };
        const round = steps.length > 0 ? await applySettled(session, request, done) : undefined;
        let after = round ? round.snapshot() : before;
        const failed = round ? round.steps.findIndex((o) => o.ran && o.exitCode !== 0) : -1;
        if (moving && failed === 0) {
            // libvirt cannot move this NIC live: same MAC (and the wanted link state), detached and attached on the new source.
            const detached = await detachAndWait(session, lookup(olds), olds.detachTimeout);
            after = await replugOrRestore({
                label: `interface ${olds.mac}`,
                attachNew: async () => (await attach(session, desired, olds.mac, detached)).after,
                restoreOld: () => attach(session, olds, olds.mac, detached),
                asBefore: `on ${olds.type} '${olds.source}' (same MAC, link ${olds.linkState})`,
                getBack: `run pulumi up again (it attaches it with MAC ${olds.mac} once the source works), or by hand: ` +
                    `virsh attach-interface ${virsh.domain} ${olds.type} ${olds.source} --mac ${olds.mac} --model ${olds.model} --live --config`,
            });
        } else {
            const failure = round?.failure(request, { device: `interface ${olds.mac}` });
            if (failure) throw failure;
        }
        const outs = outputsFrom(desired, olds.mac, after);
        verifyAttached(virsh, outs, after.running, "update");
        if (!done(after)) {
            throw new VirshError(`virsh reported success but interface ${olds.mac} has source ${outs.source} and link ${outs.linkState}`,
                virsh.context(`interface ${olds.mac}`), "run pulumi refresh, then pulumi up again", 1);
        }
        return outs;
    });
}

export const attachedInterfaceProvider = toDynamicProvider<AttachedInterfaceInputs, AttachedInterfaceOutputs>({
    table: ATTACHED_INTERFACE_RULES,
    checks: (inputs) => placementChecks(inputs as unknown as Record<string, unknown>)
        .field("type", oneOf("bridge", "network"), true)
        .field("source", isXmlText, true)
        .field("model", isXmlText)
        .field("mac", isMac)
        .field("linkState", oneOf("up", "down"))
        .field("detachTimeout", integerAtLeast(1))
        .failures,
    wasRunning: () => true,
    create,
    read: (id, olds) => readHotPlugged(id, olds, (snapshot) => outputsFrom(olds, olds.mac, snapshot)),
    update: (_id, olds, news) => update(olds, news),
    delete: async (_id, olds) => {
        await inDomainBatch(olds, (session) => removeDevice(session, lookup(olds), olds.detachTimeout));
    },
});
