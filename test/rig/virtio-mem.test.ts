/**
 * Memory past the boot maximum (issue 9) on pll-grow2 (boot maximum 512 MiB, a 1 GiB virtio-mem
 * device in 2 MiB blocks): grown from 256 MiB to 1280 MiB and back down live, the same domain id
 * and QEMU process, the split between balloon and device checked with the test's own virsh and
 * the guest's own MemTotal; a size above the ceiling or off the device's blocks refused before
 * anything changes.
 */
import assert from "node:assert/strict";
import type { DomainResourcesInputs, DomainResourcesOutputs } from "../../provider/contract";
import { InputError, providers } from "../../provider/index";
import { GROW2, guestView, qemuPid } from "./grow-env";
import { configXml, currentMemoryKiB, domId, liveXml, memStats, rejectsWith, resetGuest, resetGuestInBackground, RigEnv, rigConnection, rigUp, typed, waitFor } from "./rig-env";

const MiB = 1024;

/** The virtio-mem device's <requested> and <current> in one domain XML (KiB). */
function device(xml: string): { requested: number; current?: number } {
    const block = /<memory model='virtio-mem'>[\s\S]*?<\/memory>/.exec(xml)?.[0] ?? "";
    const size = (name: string) => {
        const m = new RegExp(`<${name} unit='KiB'>(\\d+)</${name}>`).exec(block);
        return m ? Number(m[1]) : undefined;
    };
    return { requested: size("requested") ?? NaN, current: size("current") };
}

describe("rig: memory past the boot maximum with virtio-mem (pll-grow2)", function () {
    this.timeout(300_000);
    const provider = typed<DomainResourcesInputs, DomainResourcesOutputs>(providers.domainResources);
    let env: RigEnv;
    let id = "";
    let outs: DomainResourcesOutputs;
    let ids: [string, string];
    let bootMemTotal = 0;
    const inputs = (memory: string): DomainResourcesInputs => ({ connection: rigConnection(env), domain: GROW2, memory });
    const memTotal = () => guestView(env, GROW2).MemTotal;

    before(function () {
        env = rigUp();
        resetGuest(GROW2);
        ids = [domId(GROW2), qemuPid(GROW2)];
    });

    after(function () {
        resetGuestInBackground(GROW2);
    });

    it("at 256MiB: the outputs show the boot maximum, the device and the ceiling", async () => {
        await waitFor("the guest's MemTotal", () => memTotal() > 0);
        bootMemTotal = memTotal();
        ({ id, outs } = await provider.create(inputs("256MiB")));
        assert.equal(outs.bootMaxMemoryKiB, 512 * MiB);
        assert.equal(outs.hotplugSizeKiB, 1024 * MiB);
        assert.equal(outs.hotplugRequestedKiB, 0);
        assert.equal(outs.hotplugCurrentKiB, 0);
        assert.equal(outs.maxMemoryKiB, 1536 * MiB, "the live ceiling");
        assert.equal(outs.currentMemoryKiB, 256 * MiB);
    });

    it("above the ceiling, or off the device's 2MiB blocks: refused before anything changes, naming the fix", async () => {
        const [live, config] = [liveXml(GROW2), configXml(GROW2)];
        await rejectsWith(provider.update(id, outs, inputs("2GiB")), InputError,
            [/memory 2GiB is above the ceiling 1536MiB \(boot maximum 512MiB \+ virtio-mem device 1GiB\); nothing was changed/, /Fix: ask for at most 1536MiB/]);
        await rejectsWith(provider.update(id, outs, inputs("513MiB")), InputError,
            [/memory 513MiB is the boot maximum 512MiB plus 1MiB, not a whole number of the virtio-mem device's 2MiB blocks \(nearest above: 514MiB\)/]);
        assert.equal(liveXml(GROW2), live);
        assert.equal(configXml(GROW2), config);
    });

    it("256MiB → 1280MiB live: an update; the balloon at the boot maximum, 768MiB plugged; the guest's MemTotal follows", async () => {
        const news = inputs("1280MiB");
        assert.deepEqual((await provider.diff(id, outs, news)).replaces, [], "an update, not a replacement");
        const started = Date.now();
        const applied = await provider.apply(id, outs, news);
        const settleMs = Date.now() - started;
        assert.equal(applied.replaced, false);
        outs = applied.outs;
        assert.deepEqual([domId(GROW2), qemuPid(GROW2)], ids, "same domain id and QEMU process");
        assert.deepEqual(device(liveXml(GROW2)), { requested: 768 * MiB, current: 768 * MiB }, "live device");
        assert.equal(device(configXml(GROW2)).requested, 768 * MiB, "config device");
        assert.equal(currentMemoryKiB(configXml(GROW2)), 512 * MiB, "config balloon");
        await waitFor("balloon actual 512MiB", () => memStats(GROW2).actual === 512 * MiB, { describe: () => JSON.stringify(memStats(GROW2)) });
        assert.equal(outs.hotplugRequestedKiB, 768 * MiB);
        assert.equal(outs.hotplugCurrentKiB, 768 * MiB);
        assert.equal(outs.hotplugSettled, true);
        assert.equal(outs.currentMemoryKiB, 1280 * MiB);
        await waitFor("the guest's MemTotal over 1GiB", () => memTotal() > 1024 * MiB, { describe: () => String(memTotal()) });
        console.log(`      MemTotal ${bootMemTotal} kB → ${memTotal()} kB; apply ${settleMs} ms`);
    });

    it("1280MiB → 256MiB live: unplug asked live and in the config; what the guest gave back is reported as it is", async () => {
        const started = Date.now();
        const applied = await provider.apply(id, outs, inputs("256MiB"));
        const settleMs = Date.now() - started;
        assert.equal(applied.replaced, false);
        outs = applied.outs;
        assert.deepEqual([domId(GROW2), qemuPid(GROW2)], ids, "same domain id and QEMU process");
        const live = device(liveXml(GROW2));
        assert.equal(live.requested, 0, "live device requested");
        assert.equal(device(configXml(GROW2)).requested, 0, "config device requested");
        assert.equal(outs.hotplugRequestedKiB, 0);
        // The guest may keep a block it cannot free (kernel memory in it): the outputs say so.
        assert.equal(outs.hotplugCurrentKiB, live.current, "the output is the live XML's <current>");
        assert.equal(outs.hotplugSettled, live.current === 0);
        await waitFor("the guest's MemTotal: boot value plus what is still plugged", () => Math.abs(memTotal() - bootMemTotal - (live.current ?? 0)) < 4 * MiB,
            { describe: () => String(memTotal()) });
        console.log(`      MemTotal back to ${memTotal()} kB (boot ${bootMemTotal} kB), still plugged ${live.current} KiB; apply ${settleMs} ms`);
    });

    it("refresh reports the total the config holds", async () => {
        const read = await provider.read(id, outs);
        assert.equal(read.props?.memory, "256MiB");
    });
});
