/**
 * Tuning a running guest through the real engine (issue 17), on a domain of the test's own
 * (pll-tn-eng: a copy of pll-e2e1 without an OS, which runs and takes tuning like any guest):
 * `preview` shows the tuning change as an update, `up` applies it live (the same domain id and
 * QEMU), `preview --expect-no-changes` passes after it; a pin changed by hand shows at refresh
 * and the next `up` puts it back. Checked on the host with `taskset` and the guest's cgroup.
 */
import assert from "node:assert/strict";
import type * as AutomationModule from "@pulumi/pulumi/automation";
import type { CpuTune } from "../../provider/contract";
import { RigEnv, rigUp, virshLocal } from "../rig/rig-env";
import { ThrowawayDomain } from "../rig/throwaway-domain";
import { affinity, cgroupDir, cgroupValue, vcpuThreads } from "../rig/tuning-env";
import { changed, Consumer, installConsumer, openTestStack, rigStackConnection, TestStack } from "./engine-fixture";
import { guestIdentity, GuestIdentity } from "./guest-facts";

const NAME = "pll-tn-eng";
const RESOURCE = "tn-tuning";

describe("engine: tuning a running guest: preview shows an update, up applies it live, no changes after; drift repaired (pll-tn-eng)", function () {
    this.timeout(600_000);
    let env: RigEnv;
    let consumer: Consumer;
    let stack: TestStack;
    let domain: ThrowawayDomain;
    let identity: GuestIdentity;

    const programFor = (c: Consumer, cpuTune: CpuTune): AutomationModule.PulumiFn => async () => {
        const sdk = c.load();
        const tuned = new sdk.DomainResources(RESOURCE, { connection: rigStackConnection(c, env), domain: NAME, cpuTune, memoryTune: { hardLimit: "3GiB" } });
        return { liveTuning: tuned.liveTuning };
    };
    const quota = () => cgroupValue(cgroupDir(NAME, "cpu", vcpuThreads(NAME)[0]), "cpu.cfs_quota_us");

    before(async function () {
        env = rigUp();
        domain = new ThrowawayDomain(env, NAME, "pll-e2e1");
        domain.create();
        identity = guestIdentity(NAME);
        consumer = await installConsumer();
        stack = await openTestStack(consumer, "pll-tn-stack", programFor(consumer, { vcpuPins: { 0: "1" } }));
    });

    after(async function () {
        if (stack) {
            await stack.destroy().catch(() => undefined);
            await stack.remove();
        }
        domain?.remove();
    });

    it("v1: up pins vCPU 0 and bounds memory on the running domain", async () => {
        const run = await stack.up();
        assert.deepEqual(changed(run), { [RESOURCE]: "create" });
        assert.equal(affinity(vcpuThreads(NAME)[0]), "1");
        assert.deepEqual((run.outputs.liveTuning.value as { memoryTune: unknown }).memoryTune, { hardLimit: "3GiB" });
    });

    it("v2: preview shows an update, up moves the pin and caps the vCPU live (same domain id), then no changes", async () => {
        stack.setProgram(programFor(consumer, { vcpuPins: { 0: "0" }, quota: 30000 }));
        const preview = await stack.preview();
        assert.deepEqual(changed(preview), { [RESOURCE]: "update" });
        assert.deepEqual(preview.replaceKeys, {});
        assert.deepEqual(changed(await stack.up()), { [RESOURCE]: "update" });
        assert.deepEqual(guestIdentity(NAME), identity, "the same domain id and QEMU");
        assert.equal(affinity(vcpuThreads(NAME)[0]), "0");
        assert.equal(quota(), "30000");
        await stack.preview({ expectNoChanges: true });
    });

    it("a pin and a cap changed by hand show at refresh; up puts them back live", async () => {
        virshLocal(["vcpupin", NAME, "0", "1", "--live"]);
        virshLocal(["schedinfo", NAME, "--live", "vcpu_quota=-1"]);
        const refresh = await stack.refresh();
        assert.equal(refresh.ops[RESOURCE], "update", "refresh saw the drift");
        assert.deepEqual(changed(await stack.preview()), { [RESOURCE]: "update" });
        await stack.up();
        assert.equal(affinity(vcpuThreads(NAME)[0]), "0");
        assert.equal(quota(), "30000");
        assert.deepEqual(guestIdentity(NAME), identity, "no restart");
        await stack.preview({ expectNoChanges: true });
    });
});
