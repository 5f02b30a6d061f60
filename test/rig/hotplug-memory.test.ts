/**
 * `hotplugMemory` on a guest without a virtio-mem device (issue 9), pll-grow1: adding the device
 * needs one reboot, and follows rebootPolicy: "never" refuses with nothing changed, "configOnly"
 * writes the config and reports it pending, "ifRequired" restarts once; from then on memory past the
 * boot maximum is live (the guest's own MemTotal follows). A device smaller than what it plugs is refused.
 */
import assert from "node:assert/strict";
import type { DomainResourcesInputs, DomainResourcesOutputs, RebootPolicy } from "../../provider/contract";
import { InputError, providers } from "../../provider/index";
import { parseDomainXml } from "../../provider/xml/domain-xml";
import { GROW1, guestView, qemuPid } from "./grow-env";
import { configXml, domId, liveXml, rejectsWith, resetGuest, resetGuestInBackground, RigEnv, rigConnection, rigUp, typed, waitFor } from "./rig-env";

const MiB = 1024;

describe("rig: hotplugMemory adds a virtio-mem device with one reboot (pll-grow1)", function () {
    this.timeout(300_000);
    const provider = typed<DomainResourcesInputs, DomainResourcesOutputs>(providers.domainResources);
    let env: RigEnv;
    const inputs = (rebootPolicy: RebootPolicy, memory = "256MiB", hotplugMemory = "1GiB"): DomainResourcesInputs =>
        ({ connection: rigConnection(env), domain: GROW1, memory, hotplugMemory, rebootPolicy, shutdownTimeout: 60 });
    const hasDevice = (xml: string) => /<memory model='virtio-mem'>/.test(xml);

    before(function () {
        env = rigUp();
        resetGuest(GROW1);
    });

    after(function () {
        resetGuestInBackground(GROW1);
    });

    it("the diff: adding the device is reboot-required (a replacement in preview)", async () => {
        const olds = { ...inputs("never"), hotplugMemory: undefined, hotplugSizeKiB: null, maxMemoryKiB: 512 * MiB } as unknown as DomainResourcesOutputs;
        assert.deepEqual((await provider.diff("x", olds, inputs("never"))).replaces, ["hotplugMemory"]);
    });

    it("never: refused, naming the change and the ways out; nothing changed", async () => {
        const [live, config] = [liveXml(GROW1), configXml(GROW1)];
        await rejectsWith(provider.create(inputs("never")), InputError,
            [/need a reboot of the running domain, and rebootPolicy is "never"/, /hotplugMemory: none → 1GiB \(a virtio-mem device is added to the config/, /Fix: either set rebootPolicy: "ifRequired"/]);
        assert.equal(liveXml(GROW1), live);
        assert.equal(configXml(GROW1), config);
    });

    it("configOnly: the device is in the config, not in the running guest; reported pending; no restart", async () => {
        const id = domId(GROW1);
        const { outs } = await provider.create(inputs("configOnly"));
        assert.ok(hasDevice(configXml(GROW1)), "config has the device");
        assert.ok(!hasDevice(liveXml(GROW1)), "the running guest does not");
        assert.match(configXml(GROW1), /<cell id='0' cpus='0-3' memory='524288' unit='KiB'\/>/);
        assert.equal(outs.pendingReboot, true);
        assert.ok(outs.pendingChanges.includes("hotplugMemory: none now, 1GiB after reboot"), JSON.stringify(outs.pendingChanges));
        assert.equal(domId(GROW1), id);
    });

    it("ifRequired: one restart, then memory past the boot maximum is live and the guest's MemTotal follows", async () => {
        const before = domId(GROW1);
        const { id, outs } = await provider.create(inputs("ifRequired"));
        const after = [domId(GROW1), qemuPid(GROW1)];
        assert.notEqual(after[0], before, "restarted once");
        assert.ok(hasDevice(liveXml(GROW1)), "the running guest has the device");
        assert.equal(outs.pendingReboot, false);
        assert.equal(outs.hotplugSizeKiB, 1024 * MiB);
        assert.equal(outs.bootMaxMemoryKiB, 512 * MiB);
        await waitFor("the guest's MemTotal after boot", () => guestView(env, GROW1).MemTotal > 0);
        const bootMemTotal = guestView(env, GROW1).MemTotal;
        const grown = await provider.apply(id, outs, inputs("never", "1280MiB"));
        assert.equal(grown.replaced, false);
        assert.deepEqual([domId(GROW1), qemuPid(GROW1)], after, "live: same domain id and QEMU process");
        assert.equal(grown.outs.hotplugCurrentKiB, 768 * MiB);
        await waitFor("the guest's MemTotal over 1GiB", () => guestView(env, GROW1).MemTotal > 1024 * MiB, { describe: () => JSON.stringify(guestView(env, GROW1)) });
        console.log(`      MemTotal ${bootMemTotal} kB → ${guestView(env, GROW1).MemTotal} kB`);
        // A device smaller than what it plugs now. The XML is compared once the guest has plugged all
        // it was asked: while it plugs, libvirt's live <currentMemory> and the device's <current> move.
        await waitFor("the device to plug all 768MiB", () => parseDomainXml(liveXml(GROW1)).memoryDevices.some((d) => d.model === "virtio-mem" && d.currentKiB === d.requestedKiB),
            { describe: () => JSON.stringify(parseDomainXml(liveXml(GROW1)).memoryDevices) });
        const [live, config] = [liveXml(GROW1), configXml(GROW1)];
        await rejectsWith(provider.update(id, grown.outs, inputs("never", "1280MiB", "512MiB")), InputError,
            [/hotplugMemory 512MiB is smaller than the memory the virtio-mem device already plugs \(768MiB\); nothing was changed/, /Fix: keep hotplugMemory at 1GiB/]);
        assert.equal(liveXml(GROW1), live);
        assert.equal(configXml(GROW1), config);
    });
});
