/**
 * Issue 14, a NIC whose attach fails part way (pll-fault2, through our own sshd on 127.0.0.1:2231
 * and its virsh double, which here only delays or holds an answer; every failure is libvirt's own):
 * - a create with a MAC chosen here whose config write fails (config file made immutable) detaches
 *   the live half again, so the rerun (a new MAC) leaves nothing behind;
 * - a create whose outcome is unknown (the connection lost and not back, or lost twice) names the
 *   MAC and how to adopt it; a MAC found twice (both lost attempts landed) is refused, not adopted;
 * - a given MAC found in one half is adopted and its missing half attached; found with another
 *   model in one half, refused;
 * - an update that falls back to detach + attach (update-device refused: the new bridge vanished
 *   under it) and fails at the attach puts the old NIC back (old bridge, same MAC), or, when that
 *   fails too, says plainly that the NIC is no longer on the domain.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "child_process";
import type { AttachedInterfaceInputs } from "../../provider/contract";
import { HostUnreachableError, InputError, VirshError } from "../../provider/index";
import {
    configXml, interfaceByMac, interfacesIn, liveXml, rejectsWith, resetGuest, RigEnv, typedProviders, virshLocal, waitFor,
} from "../rig/rig-env";
import { attachFailureRig, GUEST, PORT } from "./attach-failure-env";
import { FaultSshd, setConfigWritable } from "./fault-env";

/** Bridges of this suite's own (no address, no port but the guest's): the source a NIC moves between. */
const BRIDGES = ["pllt14a", "pllt14b"];

function addBridge(name: string): void {
    spawnSync("ip", ["link", "del", name]);
    execFileSync("ip", ["link", "add", name, "type", "bridge"]);
    execFileSync("ip", ["link", "set", name, "up"]);
}

function removeBridge(name: string): void {
    spawnSync("ip", ["link", "del", name]);
}

/** The NICs of the guest, live and config, as "mac bridge" (model and link too). */
function nicsOf(): { live: string[]; config: string[] } {
    const list = (xml: string) => interfacesIn(xml).map((i) => `${i.mac} ${i.bridge} ${i.model} ${i.linkState ?? "up"}`).sort();
    return { live: list(liveXml(GUEST)), config: list(configXml(GUEST)) };
}

describe(`faults: a NIC attach that fails part way (${GUEST}, own sshd on 127.0.0.1:${PORT})`, function () {
    this.timeout(240_000);
    const { nics } = typedProviders();
    const rig = attachFailureRig();
    let env: RigEnv;
    let sshd: FaultSshd;
    const inputs = (fields: Partial<AttachedInterfaceInputs> = {}): AttachedInterfaceInputs =>
        ({ connection: sshd.connection(), domain: GUEST, type: "bridge", source: env.PLL_BRIDGE, ...fields });

    beforeEach(() => {
        env = rig.env();
        sshd = rig.sshd();
    });

    afterEach(() => {
        sshd.clearRules();
        if (!sshd.listening()) sshd.restart();
        setConfigWritable(GUEST, true);
        BRIDGES.forEach(removeBridge);
    });

    it("create, MAC chosen here, config write fails after the NIC went live: the live half is detached again; the rerun leaves one NIC", async () => {
        assert.deepEqual(nicsOf(), { live: [], config: [] }, "baseline: no NIC");
        setConfigWritable(GUEST, false);
        await rejectsWith(nics.create(inputs()), VirshError, [
            /virsh attach-device failed \(exit 1\); the part of interface 52:54:00(:[0-9a-f]{2}){3} that landed \(live\) was detached again: nothing is left behind/,
            /cannot rename file '\/etc\/libvirt\/qemu\/pll-fault2\.xml\.new'.*Operation not permitted/s,
        ]);
        assert.deepEqual(nicsOf(), { live: [], config: [] }, "no NIC left behind, live or config");

        setConfigWritable(GUEST, true);
        const { id, outs } = await nics.create(inputs());
        const nic = `${outs.mac} ${env.PLL_BRIDGE} virtio up`;
        assert.deepEqual(nicsOf(), { live: [nic], config: [nic] }, "the rerun: one NIC, in both halves");
        await nics.delete(id, outs);
    });

    it("create whose answer is lost and the host does not come back: the error names the MAC, how to adopt it and how to remove it", async () => {
        sshd.clearCalls();
        sshd.rule("attach-device", "after", "4");
        const creating = rejectsWith(nics.create(inputs()), HostUnreachableError, [
            /interface (52:54:00(:[0-9a-f]{2}){3}) on pllbr0 may or may not have been attached/,
            /set mac: "52:54:00(:[0-9a-f]{2}){3}" on this resource and run pulumi up again/,
            /virsh detach-interface pll-fault2 --type bridge --mac 52:54:00(:[0-9a-f]{2}){3} --live --config/,
        ]);
        await waitFor("the attach to run on the host", () => sshd.calls().includes("attach-device ran 0"), { timeoutMs: 30_000 });
        sshd.kill();
        const error = await creating;
        assert.equal(error.outcomeUnknown, true);
        sshd.restart();
        const mac = /interface (\S+) on/.exec(error.message)?.[1] ?? "";
        assert.ok(interfaceByMac(liveXml(GUEST), mac), `the MAC named (${mac}) is the NIC that landed`);

        // Adopting it as the message says: the same NIC, no second one.
        const { id, outs } = await nics.create(inputs({ mac }));
        assert.equal(outs.mac, mac);
        const nic = `${mac} ${env.PLL_BRIDGE} virtio up`;
        assert.deepEqual(nicsOf(), { live: [nic], config: [nic] });
        await nics.delete(id, outs);
    });

    it("create whose connection drops twice (the attach not yet run when the first drop is read back): the error names the MAC; both lost attempts land later, and a MAC found twice is refused, not adopted", async () => {
        sshd.clearCalls();
        sshd.rule("attach-device", "before", "4");
        const creating = rejectsWith(nics.create(inputs()), HostUnreachableError, [
            /the answer to a change was lost twice \(the SSH connection dropped, or libvirtd died during the call\): interface (52:54:00(:[0-9a-f]{2}){3}) on pllbr0 may or may not have been attached/,
            /set mac: "52:54:00(:[0-9a-f]{2}){3}" on this resource/,
        ]);
        for (const attempt of [1, 2]) {
            await waitFor(`attach-device attempt ${attempt} to start`, () => sshd.calls().filter((c) => c === "attach-device start").length === attempt, { timeoutMs: 60_000 });
            sshd.kill();
            sshd.restart();
        }
        const error = await creating;
        assert.equal(error.outcomeUnknown, true);
        sshd.clearRules();
        const mac = /interface (\S+) on/.exec(error.message)?.[1] ?? "";
        // Both attempts' shells run on after their sleep (orphaned by the kills): the NIC lands after
        // the error, as it warned, and twice (libvirt takes a MAC twice). Adopting it then is refused.
        const nic = `${mac} ${env.PLL_BRIDGE} virtio up`;
        await waitFor(`NIC ${mac} to land twice`, () => JSON.stringify(nicsOf()) === JSON.stringify({ live: [nic, nic], config: [nic, nic] }),
            { timeoutMs: 30_000, describe: () => JSON.stringify(nicsOf()) });
        await rejectsWith(nics.create(inputs({ mac })), InputError, [
            new RegExp(`mac ${mac} is on 2 interfaces in this domain's live XML`), /remove all but one by hand/,
        ]);
        resetGuest(GUEST);
    });

    it("create with a MAC found only in the config (attached by hand): adopted, the live half attached with that MAC", async () => {
        const mac = "52:54:00:14:01:01";
        virshLocal(["attach-interface", GUEST, "bridge", env.PLL_BRIDGE, "--mac", mac, "--model", "virtio", "--config"]);
        const { id, outs } = await nics.create(inputs({ mac }));
        assert.equal(outs.attachedLive, true);
        assert.equal(outs.attachedConfig, true);
        const nic = `${mac} ${env.PLL_BRIDGE} virtio up`;
        assert.deepEqual(nicsOf(), { live: [nic], config: [nic] }, "both halves, one NIC");
        await nics.delete(id, outs);
        assert.deepEqual(nicsOf(), { live: [], config: [] });
    });

    it("create with a MAC whose config half is another NIC (e1000 there, virtio live): refused, nothing changed", async () => {
        const mac = "52:54:00:14:01:02";
        virshLocal(["attach-interface", GUEST, "bridge", env.PLL_BRIDGE, "--mac", mac, "--model", "virtio", "--live"]);
        virshLocal(["attach-interface", GUEST, "bridge", env.PLL_BRIDGE, "--mac", mac, "--model", "e1000", "--config"]);
        const before = nicsOf();
        await rejectsWith(nics.create(inputs({ mac })), InputError, [
            /mac 52:54:00:14:01:02 is already used by this domain's e1000 interface on bridge 'pllbr0' \(in its persistent config\)/,
        ]);
        assert.deepEqual(nicsOf(), before, "nothing changed");
        virshLocal(["detach-interface", GUEST, "bridge", mac, "--live", "--config"]);
        await waitFor("the hand-made NIC gone", () => interfacesIn(liveXml(GUEST)).length === 0, { timeoutMs: 30_000 });
    });

    /** A NIC on pllt14a moved to pllt14b while the bridges named in `vanish` disappear under the update-device. */
    async function moveWhileBridgesVanish(vanish: string[]): Promise<{ error: VirshError; mac: string }> {
        BRIDGES.forEach(addBridge);
        const { id, outs } = await nics.create(inputs({ source: "pllt14a", linkState: "down" }));
        sshd.clearCalls();
        sshd.rule("update-device", "before", "3");
        const moving = rejectsWith(nics.update(id, outs, inputs({ source: "pllt14b", linkState: "down" })), VirshError);
        await waitFor("update-device to start", () => sshd.calls().includes("update-device start"), { timeoutMs: 30_000 });
        vanish.forEach(removeBridge);
        const error = await moving;
        // The update-device, the new attach (and, with pllt14a gone, the restore) were refused by libvirt.
        assert.ok(sshd.calls().includes("update-device ran 1"), `update-device refused: ${sshd.calls().join(", ")}`);
        return { error, mac: outs.mac };
    }

    it("update: moved by detach + attach, the attach on the new bridge fails: the old NIC is back (old bridge, same MAC, link down), and the error says so", async () => {
        const { error, mac } = await moveWhileBridgesVanish(["pllt14b"]);
        assert.match(error.message, new RegExp(`interface ${mac} was put back on bridge 'pllt14a' \\(same MAC, link down\\): the domain has it as before this update`));
        const nic = `${mac} pllt14a virtio down`;
        assert.deepEqual(nicsOf(), { live: [nic], config: [nic] }, "the old NIC is back in both halves");
        virshLocal(["detach-interface", GUEST, "bridge", mac, "--live", "--config"]);
        await waitFor("the NIC gone", () => interfacesIn(liveXml(GUEST)).length === 0, { timeoutMs: 30_000 });
    });

    it("update: the attach on the new bridge and putting the old NIC back both fail: the error says the NIC is no longer on the domain and how to get it back", async () => {
        const { error, mac } = await moveWhileBridgesVanish(["pllt14b", "pllt14a"]);
        assert.match(error.message, new RegExp(`interface ${mac} is no longer on the domain: it was detached to be attached anew, and putting it back on bridge 'pllt14a' \\(same MAC, link down\\) failed too`));
        assert.match(error.message, new RegExp(`Fix: run pulumi up again \\(it attaches it with MAC ${mac} once the source works\\), or by hand: virsh attach-interface pll-fault2 bridge pllt14a --mac ${mac} --model virtio --live --config`));
        assert.deepEqual(nicsOf(), { live: [], config: [] }, "as said: the NIC is gone");
    });
});
