/**
 * vCPUs above the host's CPU count (issue 9) on the rig's own pll-grow1 (1 of 4 vCPUs): applied
 * live with a warning in the engine's log, same domain id and QEMU process, and the guest onlines
 * them; above the hypervisor's `virsh maxvcpus` refused before anything changes.
 */
import assert from "node:assert/strict";
import type { DomainResourcesInputs, DomainResourcesOutputs } from "../../provider/contract";
import { InputError, providers } from "../../provider/index";
import { GROW1, guestOnlinedCpus, qemuPid, withWarnings } from "./grow-env";
import { configXml, domId, liveXml, rejectsWith, resetGuest, resetGuestInBackground, RigEnv, rigConnection, rigUp, typed, vcpuCounts, virshLocal, waitFor } from "./rig-env";

describe("rig: vCPUs above the host's CPU count (pll-grow1)", function () {
    this.timeout(300_000);
    const provider = typed<DomainResourcesInputs, DomainResourcesOutputs>(providers.domainResources);
    let env: RigEnv;
    let hostCpus = 0;
    const inputs = (fields: Partial<DomainResourcesInputs>): DomainResourcesInputs => ({ connection: rigConnection(env), domain: GROW1, ...fields });

    before(function () {
        env = rigUp();
        resetGuest(GROW1);
        hostCpus = Number(/^CPU\(s\):\s*(\d+)/m.exec(virshLocal(["nodeinfo"]))?.[1]);
        assert.ok(hostCpus >= 1 && hostCpus + 1 <= vcpuCounts(configXml(GROW1)).max, `the guest's maximum must exceed the host's ${hostCpus} CPUs`);
    });

    // vCPUs cannot be unplugged from this guest (rig/README.md): only a restart takes them back.
    after(function () {
        resetGuestInBackground(GROW1);
    });

    it("above the hypervisor's maxvcpus: refused before anything changes, naming the limit", async () => {
        const limit = Number(virshLocal(["maxvcpus"]).trim());
        const [live, config] = [liveXml(GROW1), configXml(GROW1)];
        await rejectsWith(provider.create(inputs({ vcpus: limit + 1, maxVcpus: limit + 1 })), InputError,
            [new RegExp(`vcpus ${limit + 1} is more than the hypervisor allows a guest \\(virsh maxvcpus: ${limit}\\)`), /domain 'pll-grow1'/, new RegExp(`Fix: set vcpus to at most ${limit}`)]);
        assert.equal(liveXml(GROW1), live);
        assert.equal(configXml(GROW1), config);
    });

    it("within the host's CPUs (1): no warning", async () => {
        const { warnings } = await withWarnings(() => provider.create(inputs({ vcpus: 1 })));
        assert.deepEqual(warnings, []);
    });

    it("one more than the host's CPUs: live, same domain id and QEMU process, warned, onlined by the guest", async () => {
        const vcpus = hostCpus + 1;
        const [id, pid] = [domId(GROW1), qemuPid(GROW1)];
        const { result, warnings } = await withWarnings(() => provider.create(inputs({ vcpus })));
        assert.equal(vcpuCounts(liveXml(GROW1)).current, vcpus, "live vcpus");
        assert.equal(vcpuCounts(configXml(GROW1)).current, vcpus, "config vcpus");
        assert.equal(result.outs.currentVcpus, vcpus);
        assert.equal(result.outs.pendingReboot, false);
        assert.equal(domId(GROW1), id, "same domain id: no restart");
        assert.equal(qemuPid(GROW1), pid, "same QEMU process");
        // This guest has no agent: besides the overcommit, the log says its online count is unknown (guest-view.test.ts).
        assert.equal(warnings.length, 2, `two warnings, got: ${warnings.join(" | ")}`);
        assert.match(warnings[0], new RegExp(`domain 'pll-grow1': vcpus ${vcpus} is more than the host's ${hostCpus} CPUs; the guest's vCPUs will share them \\(overcommit\\)`));
        assert.match(warnings[1], new RegExp(`domain 'pll-grow1': ${vcpus} vCPUs plugged live, but no guest agent answered`));
        assert.equal(result.outs.guestVcpus, null);
        // The guest's init onlines each hot-added CPU and says so on its console.
        await waitFor(`the guest to online ${vcpus - 1} hot-added vCPUs`, () => guestOnlinedCpus(env, GROW1).length === vcpus - 1,
            { describe: () => guestOnlinedCpus(env, GROW1).join(",") });
    });

});
