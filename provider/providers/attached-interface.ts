/**
 * AttachedInterface: a NIC on a host bridge or a libvirt network, found again by its MAC. The
 * source and the link state change live; everything else replaces the NIC.
 */
import type { AttachedInterfaceInputs, AttachedInterfaceOutputs } from "../contract";
import { withDomainLock } from "../domain-lock";
import { InputError, VirshError } from "../errors";
import { checkBridgeExists, checkNetworkExists, domainUsingMac } from "../host-checks";
import { ATTACHED_INTERFACE_RULES } from "../rules/attached-interface-rules";
import { domainKey, virshFor } from "../session";
import { integerAtLeast, isMac, isText, oneOf, placementChecks } from "../validation";
import { detachAndWait } from "../virsh/device-removal";
import { DomainSnapshot, readSnapshot } from "../virsh/domain-snapshot";
import { runSettled } from "../virsh/unknown-outcome";
import type { Virsh } from "../virsh/virsh";
import { buildInterfaceXml } from "../xml/interface-xml";
import { attachFlags, interfaceAt, readHotPlugged } from "./device-lookup";
import { toDynamicProvider } from "./provider-kit";

function interfaceXml(inputs: AttachedInterfaceInputs, mac: string | undefined): string {
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
    const type = seen.type === "network" ? "network" : seen.type === "bridge" ? "bridge" : inputs.type;
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
    };
}

async function checkSource(virsh: Virsh, inputs: AttachedInterfaceInputs): Promise<void> {
    if (inputs.type === "bridge") await checkBridgeExists(virsh, inputs.source);
    else await checkNetworkExists(virsh, inputs.source);
}

function macsOf(snapshot: DomainSnapshot): Set<string> {
    return new Set([...(snapshot.live?.interfaces ?? []), ...snapshot.config.interfaces].map((i) => String(i.mac).toLowerCase()));
}

function verifyAttached(virsh: Virsh, outs: AttachedInterfaceOutputs, running: boolean, what: string): void {
    if (!outs.attachedConfig || (running && !outs.attachedLive)) {
        throw new VirshError(`virsh reported success but interface ${outs.mac} is not in the ${outs.attachedConfig ? "live XML" : "persistent config"} after ${what}`,
            virsh.context(`interface ${outs.mac}`), "run pulumi refresh, then pulumi up again", 1);
    }
}

async function attach(virsh: Virsh, inputs: AttachedInterfaceInputs, mac: string | undefined): Promise<{ mac: string; outs: AttachedInterfaceOutputs }> {
    const before = await readSnapshot(virsh);
    const known = macsOf(before);
    // After a lost answer: ours is the given MAC, or (libvirt choosing) any MAC that was not there before.
    const landed = (s: DomainSnapshot) => (mac ? macsOf(s).has(mac) : [...macsOf(s)].some((m) => !known.has(m)));
    await runSettled(virsh, ["attach-device", `--domain=${virsh.domain}`, "--file=/dev/stdin", ...attachFlags(before)],
        { stdin: interfaceXml(inputs, mac), device: `interface on ${inputs.source}` }, landed);
    const after = await readSnapshot(virsh);
    // libvirt chose the MAC when we did not: it is the one that was not there before.
    const chosen = mac ?? [...macsOf(after)].find((m) => !known.has(m));
    if (!chosen) {
        throw new VirshError("virsh reported success but no new interface appeared", virsh.context(`interface on ${inputs.source}`),
            "run pulumi refresh, then pulumi up again", 1);
    }
    const outs = outputsFrom(inputs, chosen, after);
    verifyAttached(virsh, outs, after.running, "attach");
    return { mac: chosen, outs };
}

async function create(inputs: AttachedInterfaceInputs): Promise<{ id: string; outs: AttachedInterfaceOutputs }> {
    const virsh = virshFor(inputs);
    return withDomainLock(domainKey(inputs), async () => {
        await checkSource(virsh, inputs);
        if (inputs.mac) {
            const before = await readSnapshot(virsh);
            if (macsOf(before).has(inputs.mac.toLowerCase())) {
                // Ours from an earlier attempt whose answer was lost, or attached by hand: adopt it,
                // but only when it is the NIC asked for; another NIC with this MAC is not ours to take.
                const outs = outputsFrom(inputs, inputs.mac, before);
                if (outs.type !== inputs.type || outs.source !== inputs.source || outs.model !== (inputs.model ?? "virtio")) {
                    throw new InputError(`mac ${inputs.mac} is already used by this domain's ${outs.model} interface on ${outs.type} '${outs.source}'`,
                        virsh.context(`interface ${inputs.mac}`),
                        "choose another MAC (52:54:00:xx:xx:xx) or leave mac unset; or, to manage that interface, give its type, source and model");
                }
                return { id: `${domainKey(inputs)}#interface/${inputs.mac.toLowerCase()}`, outs };
            }
            const user = await domainUsingMac(virsh, inputs.mac);
            if (user) {
                throw new InputError(`mac ${inputs.mac} is already used by domain '${user}'`, virsh.context(`interface ${inputs.mac}`),
                    "choose another MAC (52:54:00:xx:xx:xx), or leave mac unset for libvirt to choose");
            }
        }
        const { mac, outs } = await attach(virsh, inputs, inputs.mac?.toLowerCase());
        return { id: `${domainKey(inputs)}#interface/${mac}`, outs };
    });
}

function detach(virsh: Virsh, olds: AttachedInterfaceOutputs): Promise<void> {
    return detachAndWait(virsh, {
        label: `interface ${olds.mac}`,
        present: (snapshot, where) => interfaceAt(snapshot, where, olds.mac) !== undefined,
        detachArgs: ["detach-interface", `--domain=${virsh.domain}`, `--type=${olds.type}`, `--mac=${olds.mac}`],
    }, olds.detachTimeout);
}

async function update(olds: AttachedInterfaceOutputs, news: AttachedInterfaceInputs): Promise<AttachedInterfaceOutputs> {
    const virsh = virshFor(news);
    return withDomainLock(domainKey(news), async () => {
        const before = await readSnapshot(virsh);
        const desired = { ...news, mac: olds.mac };
        const flags = attachFlags(before);
        if (news.source !== olds.source) {
            await checkSource(virsh, news);
            const updated = await virsh.attempt(["update-device", `--domain=${virsh.domain}`, "--file=/dev/stdin", ...flags],
                { stdin: interfaceXml(desired, olds.mac) });
            if (updated.exitCode !== 0) {
                // libvirt cannot move this NIC live: same MAC, detached and attached on the new source.
                await detach(virsh, olds);
                await attach(virsh, desired, olds.mac);
            }
        }
        const wantLink = news.linkState ?? "up";
        if (wantLink !== olds.linkState) {
            const args = ["domif-setlink", `--domain=${virsh.domain}`, `--interface=${olds.mac}`, `--state=${wantLink}`];
            if (before.running) await virsh.run(args, { device: `interface ${olds.mac}` });
            await virsh.run([...args, "--config"], { device: `interface ${olds.mac}` });
        }
        const after = await readSnapshot(virsh);
        const outs = outputsFrom(desired, olds.mac, after);
        verifyAttached(virsh, outs, after.running, "update");
        if (outs.source !== news.source || outs.linkState !== wantLink) {
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
        .field("source", isText, true)
        .field("model", isText)
        .field("mac", isMac)
        .field("linkState", oneOf("up", "down"))
        .field("detachTimeout", integerAtLeast(1))
        .failures,
    wasRunning: () => true,
    create,
    read: (_id, olds) => readHotPlugged(olds, (snapshot) => outputsFrom(olds, olds.mac, snapshot)),
    update: (_id, olds, news) => update(olds, news),
    delete: async (_id, olds) => {
        const virsh = virshFor(olds);
        await withDomainLock(domainKey(olds), () => detach(virsh, olds));
    },
});
