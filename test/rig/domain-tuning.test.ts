/**
 * Tuning a running guest (issue 17) through the provider, on a busybox guest of the test's own
 * (pll-tn-bb, a copy of pll-e2e1): pin and unpin, cap and uncap, each checked where it takes
 * effect — the vCPU and emulator threads' affinity on the host (`taskset`), the guest's cgroup
 * files — not only in virsh's answer; a refused hard limit leaves both XMLs byte-identical; a pin
 * and a limit changed by hand show at refresh and are put back live. The guest never restarts.
 */
import assert from "node:assert/strict";
import type { ConnectionInputs, DomainResourcesInputs, DomainResourcesOutputs } from "../../provider/contract";
import { InputError } from "../../provider/errors";
import { QEMU_USAGE_MARGIN_KIB } from "../../provider/tuning-checks";
import { guestIdentity, GuestIdentity, qemuPid } from "../engine/guest-facts";
import { MatrixDomain } from "./matrix-domains";
import { configXml, liveXml, memStats, rejectsWith, RigEnv, rigConnection, rigUp, typedProviders, virshLocal, waitFor } from "./rig-env";
import { withWarnings } from "./grow-env";
import { affinity, blkioWeightFile, cgroupDir, cgroupValue, domainCgroup, vcpuThreads } from "./tuning-env";

const NAME = "pll-tn-bb";
const GiB = 1024 ** 3;

/** The running domain's XML and its config, secrets included: what a refusal must leave byte-identical. */
const bothXml = () => ({ live: virshLocal(["dumpxml", "--security-info", NAME]), config: virshLocal(["dumpxml", "--inactive", "--security-info", NAME]) });

describe("rig: tuning a running busybox guest: pins, CPU caps, memory limits, I/O weight, live and checked on the host", function () {
    this.timeout(300_000);
    const resources = typedProviders().resources;
    let env: RigEnv;
    let connection: ConnectionInputs;
    let domain: MatrixDomain;
    let identity: GuestIdentity;
    let current: { id: string; outs: DomainResourcesOutputs };

    const inputs = (tuning: Partial<DomainResourcesInputs>): DomainResourcesInputs => ({ connection, domain: NAME, ...tuning });
    const apply = async (tuning: Partial<DomainResourcesInputs>): Promise<DomainResourcesOutputs> => {
        const applied = await resources.apply(current.id, current.outs, inputs(tuning));
        assert.equal(applied.replaced, false, "an update, never a replacement");
        current = { id: applied.id, outs: applied.outs };
        assert.deepEqual(guestIdentity(NAME), identity, "the guest did not restart");
        return applied.outs;
    };

    before(async function () {
        env = rigUp();
        connection = rigConnection(env);
        domain = new MatrixDomain(env, NAME, "pll-e2e1", true);
        await domain.fresh();
        identity = guestIdentity(NAME);
    });

    after(function () {
        domain?.remove();
    });

    it("pins vCPU 0 to host CPU 1 and the emulator to CPU 0: the threads' affinity, the live XML and the config", async () => {
        current = await resources.create(inputs({ cpuTune: { vcpuPins: { 0: "1" }, emulatorPin: "0" } }));
        assert.deepEqual(guestIdentity(NAME), identity, "the guest did not restart");
        assert.equal(affinity(vcpuThreads(NAME)[0]), "1", "vCPU 0's thread runs on host CPU 1 only");
        assert.equal(affinity(qemuPid(NAME)), "0", "QEMU's emulator thread on host CPU 0 only");
        for (const xml of [liveXml(NAME), configXml(NAME)]) {
            assert.match(xml, /<vcpupin vcpu='0' cpuset='1'\/>/);
            assert.match(xml, /<emulatorpin cpuset='0'\/>/);
        }
        assert.deepEqual(current.outs.liveTuning?.cpuTune.vcpuPins, { 0: "1" });
        assert.deepEqual(current.outs.configTuning.cpuTune.emulatorPin, "0");
    });

    it("unpins (every host CPU): the threads may run anywhere again", async () => {
        await apply({ cpuTune: { vcpuPins: { 0: "0-1" }, emulatorPin: "0-1" } });
        assert.equal(affinity(vcpuThreads(NAME)[0]), "0-1");
        assert.equal(affinity(qemuPid(NAME)), "0-1");
    });

    it("caps the vCPUs (quota 20000 µs per 100000 µs), weighs CPU and I/O, bounds memory: the cgroup files say so", async () => {
        const outs = await apply({ cpuTune: { shares: 512, period: 100000, quota: 20000 }, memoryTune: { hardLimit: "3GiB", softLimit: "1GiB" }, blkioWeight: 300 });
        const vcpu0 = cgroupDir(NAME, "cpu", vcpuThreads(NAME)[0]);
        assert.match(vcpu0, /vcpu0$/, "vCPU 0's thread sits in its own cgroup");
        assert.equal(cgroupValue(vcpu0, "cpu.cfs_quota_us"), "20000");
        assert.equal(cgroupValue(vcpu0, "cpu.cfs_period_us"), "100000");
        assert.equal(cgroupValue(domainCgroup(NAME, "cpu"), "cpu.shares"), "512");
        const memory = domainCgroup(NAME, "memory");
        assert.equal(cgroupValue(memory, "memory.limit_in_bytes"), String(3 * GiB));
        assert.equal(cgroupValue(memory, "memory.soft_limit_in_bytes"), String(GiB));
        const blkio = domainCgroup(NAME, "blkio");
        assert.equal(cgroupValue(blkio, blkioWeightFile(blkio)), "300");
        assert.deepEqual(outs.liveTuning, outs.configTuning, "live and config agree");
        assert.deepEqual(outs.configTuning.memoryTune, { hardLimit: "3GiB", softLimit: "1GiB" });
    });

    it("uncaps (quota -1, hard limit unlimited): the cgroup has no cap and no limit", async () => {
        await apply({ cpuTune: { quota: -1 }, memoryTune: { hardLimit: "unlimited" } });
        assert.equal(cgroupValue(cgroupDir(NAME, "cpu", vcpuThreads(NAME)[0]), "cpu.cfs_quota_us"), "-1");
        assert.ok(Number(cgroupValue(domainCgroup(NAME, "memory"), "memory.limit_in_bytes")) > 2 ** 62, "memory.limit_in_bytes: no limit");
        assert.doesNotMatch(configXml(NAME), /<hard_limit/);
    });

    it("refuses a hard limit below the guest's ceiling + QEMU's overhead at apply: the live XML and the config stay byte-identical", async () => {
        const before = bothXml();
        const error = await rejectsWith(resources.apply(current.id, current.outs, inputs({ memoryTune: { hardLimit: "1GiB" } })), InputError, [
            /memoryTune\.hardLimit 1GiB on domain 'pll-tn-bb' is below what its QEMU can use: its memory ceiling .* 512MiB \+ QEMU's overhead 2GiB .* = 2560MiB/,
            /nothing was changed/, /Fix: set memoryTune\.hardLimit to at least 2560MiB/,
        ]);
        assert.equal(error.context.domain, NAME);
        assert.deepEqual(bothXml(), before, "the live XML (its balloon too) and the config are byte-identical");
    });

    it("a pin and a limit changed by hand (virsh vcpupin, virsh memtune, live only) show at refresh and up puts them back live", async () => {
        const tuning = { cpuTune: { vcpuPins: { 0: "1" } }, memoryTune: { hardLimit: "3GiB" } };
        await apply(tuning);
        virshLocal(["vcpupin", NAME, "0", "0", "--live"]);
        virshLocal(["memtune", NAME, "--hard-limit", String(4 * 1024 * 1024), "--live"]);
        assert.equal(affinity(vcpuThreads(NAME)[0]), "0", "the drift is real");
        const refreshed = await resources.read(current.id, current.outs);
        assert.ok(refreshed.props);
        assert.deepEqual(refreshed.props.cpuTune?.vcpuPins, { 0: "0" }, "refresh reports the running domain's pin");
        assert.equal(refreshed.props.memoryTune?.hardLimit, "4GiB", "and its limit");
        current = { id: current.id, outs: refreshed.props };
        const diff = await resources.diff(current.id, current.outs, inputs(tuning));
        assert.equal(diff.changes, true, "the preview shows the drift");
        assert.deepEqual(diff.replaces, [], "as an update");
        await apply(tuning);
        assert.equal(affinity(vcpuThreads(NAME)[0]), "1", "vCPU 0 back on host CPU 1");
        assert.equal(cgroupValue(domainCgroup(NAME, "memory"), "memory.limit_in_bytes"), String(3 * GiB), "the limit back at 3GiB");
        assert.equal((await resources.diff(current.id, current.outs, inputs(tuning))).changes, false, "no change left");
    });
    it("the bound a lowered hard limit keeps (QEMU's rss + the margin) is one this host takes: memtune --live at exactly it succeeds and the guest keeps running", () => {
        // cgroup v1 refuses (EBUSY) a limit under what it cannot reclaim; v2 would kill QEMU there.
        const rssKiB = Number(/^rss (\d+)$/m.exec(virshLocal(["dommemstat", NAME]))?.[1]);
        assert.ok(rssKiB > 0, "dommemstat reports QEMU's rss, the input of the check");
        const boundKiB = rssKiB + QEMU_USAGE_MARGIN_KIB;
        virshLocal(["memtune", NAME, "--hard-limit", String(boundKiB), "--live"]);
        try {
            assert.equal(cgroupValue(domainCgroup(NAME, "memory"), "memory.limit_in_bytes"), String(boundKiB * 1024), "the cgroup took the limit");
            assert.deepEqual(guestIdentity(NAME), identity, "the guest kept running");
        } finally {
            virshLocal(["memtune", NAME, "--hard-limit", String(3 * 1024 * 1024), "--live"]);
        }
    });

    it("refuses memory raised past a hard limit set by hand (not managed): the numbers, and both XMLs byte-identical", async () => {
        // 2 GiB: under the 512 MiB ceiling + 2 GiB TCG overhead, yet above what this busybox QEMU holds.
        virshLocal(["memtune", NAME, "--hard-limit", String(2 * 1024 * 1024), "--live", "--config"]);
        const before = bothXml();
        await rejectsWith(resources.create({ connection, domain: NAME, memory: "512MiB" }), InputError, [
            /the hard limit the config has \(not managed by these inputs\) 2GiB on domain 'pll-tn-bb' is below what its QEMU can use: its memory ceiling .* 512MiB \+ QEMU's overhead 2GiB .* = 2560MiB/,
            /nothing was changed/, /virsh memtune 'pll-tn-bb' --hard-limit 2621440 --config/,
        ]);
        assert.deepEqual(bothXml(), before, "the live XML (its balloon too) and the config are byte-identical");
    });

    it("under that hand-set limit, an apply that raises nothing (a pin) goes ahead and warns once per half; a balloon set by hand stays (memory not managed)", async () => {
        // The balloon lowered by hand: an apply that does not manage memory must not put it back to the config's 256 MiB.
        const handBalloonKiB = 192 * 1024;
        virshLocal(["setmem", NAME, String(handBalloonKiB), "--live"]);
        const handSet = () => Math.abs(memStats(NAME).actual - handBalloonKiB) <= 1024 && liveXml(NAME).includes(`<currentMemory unit='KiB'>${handBalloonKiB}</currentMemory>`);
        await waitFor("the balloon and the live XML at the hand-set size", handSet, { describe: () => `actual ${memStats(NAME).actual}` });
        const { result, warnings } = await withWarnings(() => resources.create({ connection, domain: NAME, cpuTune: { vcpuPins: { 0: "0" } } }));
        current = result;
        assert.deepEqual(guestIdentity(NAME), identity, "the guest did not restart");
        assert.equal(affinity(vcpuThreads(NAME)[0]), "0", "the pin landed");
        const warning = warnings.find((w) => w.includes("the hard limit the config has (not managed by these inputs) 2GiB on domain 'pll-tn-bb'"));
        assert.ok(warning, `a warning about the limit, got: ${warnings.join(" | ")}`);
        assert.match(warning, /is below what its QEMU can use: .* 512MiB \+ QEMU's overhead 2GiB .* = 2560MiB/);
        assert.match(warning, /This apply goes ahead: it neither raises .* Fix: virsh memtune 'pll-tn-bb' --hard-limit 2621440 --config, or manage memoryTune\.hardLimit/);
        const limitWarnings = warnings.filter((w) => w.includes("(not managed by these inputs) 2GiB on domain 'pll-tn-bb'"));
        assert.equal(limitWarnings.length, 2, `one warning per half (config, running domain), got: ${limitWarnings.join(" | ")}`);
        assert.match(limitWarnings[1], /the hard limit the running domain has .* Fix: virsh memtune 'pll-tn-bb' --hard-limit 2621440 --live, or manage/);
        assert.equal(cgroupValue(domainCgroup(NAME, "memory"), "memory.limit_in_bytes"), String(2 * GiB), "the limit is left as it was");
        assert.ok(handSet(), `the hand-set balloon stays at ${handBalloonKiB} KiB (the live XML too), got actual ${memStats(NAME).actual}`);
        virshLocal(["setmem", NAME, String(256 * 1024), "--live"]);
        await waitFor("the balloon back at 256 MiB in the live XML", () => liveXml(NAME).includes("<currentMemory unit='KiB'>262144</currentMemory>"));
    });

    it("under a too-low hard limit in the config (memtune --config), a change that reboots the guest is refused before anything: a new QEMU would start under it", async () => {
        // maxVcpus 4 → 5 needs a reboot; rebootPolicy allows it. The apply raises no memory, yet the reboot starts QEMU under 2 GiB.
        const before = bothXml();
        await rejectsWith(resources.create({ connection, domain: NAME, maxVcpus: 5, rebootPolicy: "ifRequired" }), InputError, [
            /the hard limit the config has \(not managed by these inputs\) 2GiB on domain 'pll-tn-bb' is below what its QEMU can use: .* = 2560MiB/,
            /nothing was changed/, /virsh memtune 'pll-tn-bb' --hard-limit 2621440 --config/,
        ]);
        assert.deepEqual(bothXml(), before, "the live XML and the config are byte-identical");
        assert.deepEqual(guestIdentity(NAME), identity, "the guest did not restart");
    });

    it("refuses two DomainResources on the domain in one batch, both naming each other: both XMLs byte-identical, the guest running", async () => {
        virshLocal(["memtune", NAME, "--hard-limit", "-1", "--live", "--config"]);
        const before = bothXml();
        // Each would pass alone; together each would plan without the other's change, which is refused whatever the sizes.
        const results = await Promise.allSettled([
            resources.create({ connection, domain: NAME, memoryTune: { hardLimit: "3GiB" } }),
            resources.create({ connection, domain: NAME, memory: "512MiB", cpuTune: { quota: 50000 } }),
        ]);
        const messages = results.map((r) => (r.status === "rejected" && r.reason instanceof InputError ? r.reason.message : `not refused: ${r.status}`));
        assert.match(messages[0], /2 DomainResources manage domain 'pll-tn-bb' in one update: this one is the one managing memoryTune, beside the one managing memory, cpuTune/);
        assert.match(messages[1], /this one is the one managing memory, cpuTune, beside the one managing memoryTune; .* none of them changed anything/);
        assert.deepEqual(bothXml(), before, "the live XML (its balloon too) and the config are byte-identical");
        assert.deepEqual(guestIdentity(NAME), identity, "the guest kept running");
    });
});
