/**
 * AttachedInterface on the real rig (pll-guest1): a NIC on the bridge pllbr0 attached (libvirt's
 * MAC reported), its link set down live, and detached by MAC. Checked with local virsh.
 */
import assert from "node:assert/strict";
import type { AttachedInterfaceInputs, AttachedInterfaceOutputs } from "../../provider/contract";
import { providers } from "../../provider/index";
import {
    configXml, GUEST1, interfaceByMac, interfacesIn, liveXml, resetGuest, resetGuestInBackground, RigEnv, rigConnection, rigUp, typed, virshLocal,
} from "./rig-env";

describe("rig: AttachedInterface (pll-guest1)", function () {
    this.timeout(180_000);
    const provider = typed<AttachedInterfaceInputs, AttachedInterfaceOutputs>(providers.attachedInterface);
    let env: RigEnv;
    let id = "";
    let outs: AttachedInterfaceOutputs;
    const inputs = (fields: Partial<AttachedInterfaceInputs> = {}): AttachedInterfaceInputs =>
        ({ connection: rigConnection(env), domain: GUEST1, type: "bridge", source: env.PLL_BRIDGE, ...fields });

    before(function () {
        this.timeout(300_000);
        env = rigUp();
        resetGuest(GUEST1);
    });

    after(() => resetGuestInBackground(GUEST1));

    it("a bridge NIC is attached live and in config; the MAC chosen for it (none given) is reported and matches the XML", async () => {
        assert.equal(interfacesIn(liveXml(GUEST1)).length, 0, "baseline: no NIC");
        ({ id, outs } = await provider.create(inputs()));
        assert.match(outs.mac, /^52:54:00(:[0-9a-f]{2}){3}$/);
        assert.equal(outs.model, "virtio");
        assert.equal(outs.linkState, "up");
        assert.equal(outs.attachedLive, true);
        assert.equal(outs.attachedConfig, true);
        for (const [where, xml] of [["live", liveXml(GUEST1)], ["config", configXml(GUEST1)]] as const) {
            const nics = interfacesIn(xml);
            assert.equal(nics.length, 1, `${where}: one NIC`);
            assert.equal(nics[0].mac, outs.mac, `${where}: the reported MAC is the real one`);
            assert.equal(nics[0].type, "bridge", where);
            assert.equal(nics[0].bridge, env.PLL_BRIDGE, where);
            assert.equal(nics[0].model, "virtio", where);
            assert.notEqual(nics[0].linkState, "down", where);
        }
        assert.match(virshLocal(["domiflist", GUEST1]), new RegExp(`${env.PLL_BRIDGE}\\s+virtio\\s+${outs.mac}`));
    });

    it("linkState down is applied live (diff: update), XML <link state='down'/>", async () => {
        const diff = await provider.diff(id, outs, inputs({ linkState: "down" }));
        assert.equal(diff.changes, true);
        assert.deepEqual(diff.replaces, []);
        const applied = await provider.apply(id, outs, inputs({ linkState: "down" }));
        assert.equal(applied.replaced, false);
        outs = applied.outs;
        assert.equal(outs.linkState, "down");
        assert.equal(interfaceByMac(liveXml(GUEST1), outs.mac)?.linkState, "down", "live");
        assert.equal(interfaceByMac(configXml(GUEST1), outs.mac)?.linkState, "down", "config");
        assert.match(virshLocal(["domif-getlink", GUEST1, outs.mac]), /down/);
    });

    it("the NIC is detached by MAC on delete: gone from live and config", async () => {
        await provider.delete(id, outs);
        assert.equal(interfaceByMac(liveXml(GUEST1), outs.mac), undefined, "gone from live");
        assert.equal(interfaceByMac(configXml(GUEST1), outs.mac), undefined, "gone from config");
        assert.equal((await provider.read(id, outs)).id, undefined, "read reports it gone");
    });
});
