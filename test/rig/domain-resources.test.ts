/**
 * DomainResources on the real rig (pll-guest1): memory up and down live, vCPUs up live, a vCPU
 * decrease refused ("never"), applied with a restart ("ifRequired"), written to the config only
 * ("configOnly"), and memory above the maximum refused. Every result is checked with the test's
 * own local virsh (dumpxml, dumpxml --inactive, dommemstat, domid).
 *
 * The tests run in order and carry the resource's state (id, outputs) from one to the next, as
 * the engine would between two `pulumi up`s; changes go through check → diff → update, or
 * delete + create when the diff asks for a replacement (reboot-required properties do).
 */
import assert from "node:assert/strict";
import type { DomainResourcesInputs, DomainResourcesOutputs } from "../../provider/contract";
import { InputError, providers } from "../../provider/index";
import {
    configXml, currentMemoryKiB, domId, domState, GUEST1, liveXml, memStats, resetGuest, resetGuestInBackground, RigEnv, rigConnection, rigUp,
    typed, vcpuCounts, waitFor, waitGuestReady, rejectsWith,
} from "./rig-env";

const KIB_256M = 256 * 1024;
const KIB_384M = 384 * 1024;

describe("rig: DomainResources (pll-guest1)", function () {
    this.timeout(180_000);
    const provider = typed<DomainResourcesInputs, DomainResourcesOutputs>(providers.domainResources);
    let env: RigEnv;
    let id = "";
    let outs: DomainResourcesOutputs;
    const inputs = (fields: Partial<DomainResourcesInputs>): DomainResourcesInputs =>
        ({ connection: rigConnection(env), domain: GUEST1, ...fields });

    before(function () {
        this.timeout(300_000);
        env = rigUp();
        resetGuest(GUEST1);
    });

    after(() => resetGuestInBackground(GUEST1));

    async function assertMemory(kib: number): Promise<void> {
        assert.equal(currentMemoryKiB(configXml(GUEST1)), kib, "config (--inactive) currentMemory");
        // The live <currentMemory> follows the balloon event a moment after setmem (rig/README.md).
        await waitFor(`live currentMemory ${kib}`, () => currentMemoryKiB(liveXml(GUEST1)) === kib,
            { timeoutMs: 15_000, describe: () => String(currentMemoryKiB(liveXml(GUEST1))) });
        const actual = memStats(GUEST1).actual;
        assert.ok(Math.abs(actual - kib) <= 1024, `dommemstat actual ${actual} KiB, expected ~${kib}`);
    }

    it("memory up 256→384MiB live: live and config currentMemory, dommemstat actual follows", async () => {
        assert.equal(currentMemoryKiB(configXml(GUEST1)), KIB_256M, "baseline");
        const idBefore = domId(GUEST1);
        ({ id, outs } = await provider.create(inputs({ memory: "384MiB" })));
        assert.equal(outs.currentMemoryKiB, KIB_384M);
        assert.equal(outs.maxMemoryKiB, 512 * 1024);
        assert.equal(outs.balloonSettled, true, `balloon actual ${outs.balloonActualKiB}`);
        assert.ok(outs.balloonActualKiB !== null && Math.abs(outs.balloonActualKiB - KIB_384M) <= 1024);
        assert.equal(outs.state, "running");
        assert.equal(outs.pendingReboot, false);
        await assertMemory(KIB_384M);
        assert.equal(domId(GUEST1), idBefore, "no restart");
    });

    it("memory down 384→256MiB live (diff: update, no replace)", async () => {
        const idBefore = domId(GUEST1);
        const diff = await provider.diff(id, outs, inputs({ memory: "256MiB" }));
        assert.equal(diff.changes, true);
        assert.deepEqual(diff.replaces, []);
        const applied = await provider.apply(id, outs, inputs({ memory: "256MiB" }));
        assert.equal(applied.replaced, false);
        outs = applied.outs;
        assert.equal(outs.currentMemoryKiB, KIB_256M);
        assert.equal(outs.balloonSettled, true, `balloon actual ${outs.balloonActualKiB}`);
        await assertMemory(KIB_256M);
        assert.equal(domId(GUEST1), idBefore, "no restart");
    });

    it("vCPUs up 1→2 live: live vcpu current=2, config too, same domain id (no reboot)", async () => {
        const idBefore = domId(GUEST1);
        assert.equal(vcpuCounts(liveXml(GUEST1)).current, 1, "baseline");
        const applied = await provider.apply(id, outs, inputs({ memory: "256MiB", vcpus: 2 }));
        assert.equal(applied.replaced, false, "a vCPU increase within the maximum is an update");
        outs = applied.outs;
        assert.equal(outs.currentVcpus, 2);
        assert.equal(outs.maximumVcpus, 4);
        assert.deepEqual(vcpuCounts(liveXml(GUEST1)), { current: 2, max: 4 });
        assert.deepEqual(vcpuCounts(configXml(GUEST1)), { current: 2, max: 4 });
        assert.equal(domId(GUEST1), idBefore, "no restart");
        assert.equal(domState(GUEST1), "running");
    });

    it("vCPU decrease 2→1 with rebootPolicy never: refused naming vcpus, XML byte-identical", async () => {
        const liveBefore = liveXml(GUEST1);
        const configBefore = configXml(GUEST1);
        const idBefore = domId(GUEST1);
        const news = inputs({ memory: "256MiB", vcpus: 1, rebootPolicy: "never" });
        const diff = await provider.diff(id, outs, news);
        assert.deepEqual(diff.replaces, ["vcpus"], "preview marks the reboot-required property");
        const error = await rejectsWith(provider.apply(id, outs, news), InputError, [/vcpus: 2 → 1/, /"never"/, /ifRequired/, /configOnly/, /Nothing was changed/]);
        assert.doesNotMatch(error.message, /memory:/, "memory did not change, so it is not named");
        assert.equal(liveXml(GUEST1), liveBefore, "live XML unchanged");
        assert.equal(configXml(GUEST1), configBefore, "config XML unchanged");
        assert.equal(domId(GUEST1), idBefore);
    });

    it("vCPU decrease 2→1 with rebootPolicy ifRequired: restarted (new id), 1 vCPU live and in config", async () => {
        const idBefore = domId(GUEST1);
        const applied = await provider.apply(id, outs, inputs({ memory: "256MiB", vcpus: 1, rebootPolicy: "ifRequired", shutdownTimeout: 60 }));
        assert.equal(applied.replaced, true, "reboot-required: the engine replaces (delete is a no-op, create converges)");
        ({ id, outs } = applied);
        assert.equal(outs.state, "running");
        assert.equal(outs.currentVcpus, 1);
        assert.equal(outs.pendingReboot, false);
        assert.equal(domState(GUEST1), "running");
        assert.notEqual(domId(GUEST1), idBefore, "the domain was restarted");
        assert.deepEqual(vcpuCounts(liveXml(GUEST1)), { current: 1, max: 4 });
        assert.deepEqual(vcpuCounts(configXml(GUEST1)), { current: 1, max: 4 });
        assert.equal(currentMemoryKiB(configXml(GUEST1)), KIB_256M, "memory kept");
        // The following tests need the guest's init (balloon driver, vCPU onlining) running again.
        await waitGuestReady(env, GUEST1);
        await waitFor("balloon back at 256MiB", () => Math.abs(memStats(GUEST1).actual - KIB_256M) <= 1024,
            { timeoutMs: 30_000, describe: () => JSON.stringify(memStats(GUEST1)) });
    });

    it("vCPU decrease with rebootPolicy configOnly: config changed, live unchanged, pendingReboot + pendingChanges name vcpus", async () => {
        // Back to 2 live vCPUs first (a live increase), then ask for 1 under configOnly.
        ({ outs } = await provider.apply(id, outs, inputs({ memory: "256MiB", vcpus: 2, rebootPolicy: "configOnly" })));
        assert.deepEqual(vcpuCounts(liveXml(GUEST1)), { current: 2, max: 4 });
        const idBefore = domId(GUEST1);

        const applied = await provider.apply(id, outs, inputs({ memory: "256MiB", vcpus: 1, rebootPolicy: "configOnly" }));
        ({ id, outs } = applied);
        assert.equal(outs.pendingReboot, true);
        assert.ok(outs.pendingChanges.some((c) => /vcpus/.test(c) && /2/.test(c) && /1/.test(c)), `pendingChanges: ${JSON.stringify(outs.pendingChanges)}`);
        assert.equal(outs.currentVcpus, 2, "outputs report the running guest");
        assert.equal(vcpuCounts(liveXml(GUEST1)).current, 2, "live unchanged");
        assert.equal(vcpuCounts(configXml(GUEST1)).current, 1, "config changed");
        assert.equal(domId(GUEST1), idBefore, "no restart");
        assert.equal(domState(GUEST1), "running");
    });

    it("memory 4 (the seed's `setmem cos 4`, KiB to virsh) is refused by check as a likely unit mistake", async () => {
        const configBefore = configXml(GUEST1);
        for (const memory of [4, "4KiB", "4"]) {
            const failures = await provider.checkFailures(inputs({ memory }));
            assert.equal(failures.length, 1, `memory ${JSON.stringify(memory)}: ${JSON.stringify(failures)}`);
            assert.equal(failures[0].property, "memory");
        }
        assert.match((await provider.checkFailures(inputs({ memory: 4 })))[0].reason, /under 64 MiB: most likely a unit mistake/);
        assert.equal(configXml(GUEST1), configBefore);
    });

    it("memory above the maximum (768MiB > 512MiB) with rebootPolicy never: refused, nothing changed", async () => {
        const liveBefore = liveXml(GUEST1);
        const configBefore = configXml(GUEST1);
        const news = inputs({ memory: "768MiB", rebootPolicy: "never" });
        const diff = await provider.diff(id, outs, news);
        assert.ok(diff.replaces?.includes("memory"), `replaces: ${JSON.stringify(diff.replaces)}`);
        await rejectsWith(provider.apply(id, outs, news), InputError, [/memory: 256MiB → 768MiB/, /maximum/, /"never"/]);
        assert.equal(liveXml(GUEST1), liveBefore, "live XML unchanged");
        assert.equal(configXml(GUEST1), configBefore, "config XML unchanged");
    });
});
