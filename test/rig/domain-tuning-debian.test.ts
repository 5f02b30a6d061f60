/**
 * Tuning the Debian guest without an agent (issue 17, pll-deb2): a pin, a CPU cap and a hard limit
 * applied live, checked on the host (`taskset`, the cgroup files) while the guest keeps running; a
 * hard limit its memory ceiling (a virtio-mem device of 1 GiB counted) and the TCG cache (2 GiB
 * tb-cache) would not leave room for is refused with the numbers; then unpinned and uncapped.
 * The guest is reset afterwards.
 */
import assert from "node:assert/strict";
import type { DomainResourcesInputs, DomainResourcesOutputs } from "../../provider/contract";
import { InputError } from "../../provider/errors";
import { guestIdentity, GuestIdentity } from "../engine/guest-facts";
import { DEB_NO_AGENT } from "./debian-env";
import { configXml, rejectsWith, resetGuest, resetGuestInBackground, RigEnv, rigConnection, rigUp, typedProviders } from "./rig-env";
import { affinity, cgroupDir, cgroupValue, domainCgroup, vcpuThreads } from "./tuning-env";

const GiB = 1024 ** 3;

describe("rig: tuning the Debian guest live (pll-deb2): pin, cap, hard limit, checked on the host", function () {
    this.timeout(600_000);
    const resources = typedProviders().resources;
    let env: RigEnv;
    let identity: GuestIdentity;
    let current: { id: string; outs: DomainResourcesOutputs };
    const inputs = (tuning: Partial<DomainResourcesInputs>): DomainResourcesInputs => ({ connection: rigConnection(env), domain: DEB_NO_AGENT, ...tuning });

    before(function () {
        env = rigUp();
        resetGuest(DEB_NO_AGENT);
        identity = guestIdentity(DEB_NO_AGENT);
    });

    after(function () {
        resetGuestInBackground(DEB_NO_AGENT);
    });

    it("pins vCPU 0 to host CPU 1, caps it at half a CPU and bounds QEMU's memory at 5GiB, live; the guest keeps running", async () => {
        current = await resources.create(inputs({ cpuTune: { vcpuPins: { 0: "1" }, quota: 50000 }, memoryTune: { hardLimit: "5GiB" } }));
        const thread = vcpuThreads(DEB_NO_AGENT)[0];
        assert.equal(affinity(thread), "1");
        assert.equal(cgroupValue(cgroupDir(DEB_NO_AGENT, "cpu", thread), "cpu.cfs_quota_us"), "50000");
        assert.equal(cgroupValue(domainCgroup(DEB_NO_AGENT, "memory"), "memory.limit_in_bytes"), String(5 * GiB));
        assert.match(configXml(DEB_NO_AGENT), /<hard_limit unit='KiB'>5242880<\/hard_limit>/);
        assert.deepEqual(guestIdentity(DEB_NO_AGENT), identity, "no restart");
    });

    it("refuses 4GiB: below its ceiling 1.5GiB (virtio-mem included) + 1GiB for QEMU + its 2GiB TCG cache; nothing changes", async () => {
        const config = configXml(DEB_NO_AGENT);
        await rejectsWith(resources.apply(current.id, current.outs, inputs({ cpuTune: { vcpuPins: { 0: "1" }, quota: 50000 }, memoryTune: { hardLimit: "4GiB" } })), InputError, [
            /hardLimit 4GiB on domain 'pll-deb2' is below what its QEMU can use: its memory ceiling .* 1536MiB \+ QEMU's overhead 3GiB \(1GiB for QEMU itself \+ 2GiB of TCG translation cache\) = 4608MiB/,
            /Fix: set memoryTune\.hardLimit to at least 4608MiB/,
        ]);
        assert.equal(configXml(DEB_NO_AGENT), config);
        assert.equal(cgroupValue(domainCgroup(DEB_NO_AGENT, "memory"), "memory.limit_in_bytes"), String(5 * GiB));
    });

    it("unpins and uncaps live", async () => {
        const applied = await resources.apply(current.id, current.outs, inputs({ cpuTune: { vcpuPins: { 0: "0-1" }, quota: -1 }, memoryTune: { hardLimit: "unlimited" } }));
        assert.equal(applied.replaced, false);
        const thread = vcpuThreads(DEB_NO_AGENT)[0];
        assert.equal(affinity(thread), "0-1");
        assert.equal(cgroupValue(cgroupDir(DEB_NO_AGENT, "cpu", thread), "cpu.cfs_quota_us"), "-1");
        assert.ok(Number(cgroupValue(domainCgroup(DEB_NO_AGENT, "memory"), "memory.limit_in_bytes")) > 2 ** 62);
        assert.deepEqual(guestIdentity(DEB_NO_AGENT), identity, "no restart");
    });
});
