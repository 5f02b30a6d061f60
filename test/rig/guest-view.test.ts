/**
 * What the guest really got (issue 11), on the rig's real Debian 12 guests: pll-deb1 with the
 * guest agent, pll-deb2 without. Debian has no udev rule that onlines hot-added CPUs or plugged
 * memory, so libvirt's view and the guest's differ unless the provider uses the agent. Every claim
 * is checked with the test's own virsh and with the guest's own console report (MemTotal, online CPUs).
 */
import assert from "node:assert/strict";
import type { DomainResourcesInputs, DomainResourcesOutputs } from "../../provider/contract";
import { InputError, providers } from "../../provider/index";
import { classifyChanges } from "../../provider/rules/rule-table";
import { DOMAIN_RESOURCES_RULES } from "../../provider/rules/domain-resources-rules";
import { agentCall, DEB_AGENT, DEB_NO_AGENT, debianView, offlineMemoryBlocks, onlineByAgent, steadyView, waitForAgent, waitForView } from "./debian-env";
import { qemuPid, withWarnings } from "./grow-env";
import { configXml, domId, liveXml, rejectsWith, resetGuest, resetGuestInBackground, RigEnv, rigConnection, rigUp, sleep, typed, vcpuCounts } from "./rig-env";

const MiB = 1024;
const provider = typed<DomainResourcesInputs, DomainResourcesOutputs>(providers.domainResources);

/** How `pulumi preview` classifies the change of `path` from these outputs to these inputs (the rule table). */
function previewKind(olds: DomainResourcesOutputs, news: DomainResourcesInputs, path: string): string | undefined {
    return classifyChanges(DOMAIN_RESOURCES_RULES, olds as unknown as Record<string, unknown>, news as unknown as Record<string, unknown>, true)
        .find((c) => c.path === path)?.kind;
}

/** MemTotal moves by what the guest onlined or gave back; the kernel keeps a little of a block for itself. */
function assertNear(actual: number, expected: number, what: string, slackKiB = 8 * MiB): void {
    assert.ok(Math.abs(actual - expected) <= slackKiB, `${what}: ${actual} KiB, expected about ${expected} KiB (±${slackKiB})`);
}

describe("rig: the guest's own view, with the guest agent (Debian, pll-deb1)", function () {
    this.timeout(600_000);
    let env: RigEnv;
    let id = "";
    let outs: DomainResourcesOutputs;
    let ids: [string, string];
    const inputs = (fields: Partial<DomainResourcesInputs>): DomainResourcesInputs => ({ connection: rigConnection(env), domain: DEB_AGENT, ...fields });

    before(async function () {
        env = rigUp();
        resetGuest(DEB_AGENT);
        await waitForAgent(DEB_AGENT);
        ids = [domId(DEB_AGENT), qemuPid(DEB_AGENT)];
    });

    after(function () {
        resetGuestInBackground(DEB_AGENT);
    });

    it("adopted at 1 vCPU: libvirt's count, the guest's own count and the guest's total memory side by side", async () => {
        const view = await waitForView(env, DEB_AGENT, "MemTotal reported", (v) => v.memTotalKiB > 0);
        ({ id, outs } = await provider.create(inputs({ vcpus: 1 })));
        assert.equal(outs.guestAgent, true);
        assert.equal(outs.currentVcpus, 1);
        assert.equal(outs.guestVcpus, 1);
        assert.ok(outs.guestMemoryKiB !== null, "the balloon's statistics give the guest's total");
        assertNear(outs.guestMemoryKiB, view.memTotalKiB, "guestMemoryKiB against the guest's MemTotal", 1024);
    });

    it("vCPUs 1 → 3: live, plugged and onlined through the agent; 3 online in the guest, same domain and QEMU process", async () => {
        const news = inputs({ vcpus: 3 });
        assert.equal(previewKind(outs, news, "vcpus"), "live");
        const applied = await provider.apply(id, outs, news);
        assert.equal(applied.replaced, false);
        outs = applied.outs;
        assert.equal(vcpuCounts(liveXml(DEB_AGENT)).current, 3, "libvirt: live");
        assert.equal(vcpuCounts(configXml(DEB_AGENT)).current, 3, "libvirt: config");
        assert.equal(onlineByAgent(DEB_AGENT), 3, "virsh guestvcpus: online");
        assert.deepEqual([outs.currentVcpus, outs.guestVcpus], [3, 3]);
        await waitForView(env, DEB_AGENT, "3 CPUs online", (v) => v.onlineCpus === 3);
        assert.deepEqual([domId(DEB_AGENT), qemuPid(DEB_AGENT)], ids, "same domain id and QEMU process");
    });

    it("vCPUs 3 → 1: live through the agent (offlined in the guest, no unplug), config 1, nothing pending, same domain", async () => {
        const news = inputs({ vcpus: 1 });
        assert.equal(previewKind(outs, news, "vcpus"), "live", "preview: live, because the agent answered at the last read");
        const applied = await provider.apply(id, outs, news);
        assert.equal(applied.replaced, false);
        outs = applied.outs;
        assert.equal(onlineByAgent(DEB_AGENT), 1, "virsh guestvcpus: online");
        assert.equal(vcpuCounts(configXml(DEB_AGENT)).current, 1, "libvirt: config, for the next boot");
        assert.equal(vcpuCounts(liveXml(DEB_AGENT)).current, 3, "libvirt: still plugged, offline in the guest");
        assert.deepEqual([outs.currentVcpus, outs.guestVcpus, outs.pendingReboot], [3, 1, false]);
        await waitForView(env, DEB_AGENT, "1 CPU online", (v) => v.onlineCpus === 1);
        assert.deepEqual([domId(DEB_AGENT), qemuPid(DEB_AGENT)], ids, "same domain id and QEMU process");
    });

    it("a CPU offlined by hand inside the guest is drift: refresh reports it, up brings it back live", async () => {
        outs = (await provider.apply(id, outs, inputs({ vcpus: 2 }))).outs;
        assert.equal(onlineByAgent(DEB_AGENT), 2);
        // What an operator does inside the guest (echo 0 > /sys/devices/system/cpu/cpu1/online), through the agent.
        agentCall(DEB_AGENT, { execute: "guest-set-vcpus", arguments: { vcpus: [{ "logical-id": 1, online: false }] } });
        await waitForView(env, DEB_AGENT, "1 CPU online after the hand change", (v) => v.onlineCpus === 1);
        const read = await provider.read(id, outs);
        assert.ok(read.props);
        assert.equal(read.props.vcpus, 1, "refresh: the guest's own count");
        assert.equal(read.props.guestVcpus, 1);
        const news = inputs({ vcpus: 2 });
        assert.equal((await provider.diff(id, read.props, news)).changes, true, "drift shows in the diff");
        assert.equal(previewKind(read.props, news, "vcpus"), "live");
        outs = (await provider.apply(id, read.props, news)).outs;
        assert.equal(outs.guestVcpus, 2);
        await waitForView(env, DEB_AGENT, "2 CPUs online again", (v) => v.onlineCpus === 2);
    });

    it("memory past the boot maximum: the agent onlines what virtio-mem plugged; MemTotal follows up and down", async () => {
        outs = (await provider.apply(id, outs, inputs({ vcpus: 2, memory: "512MiB" }))).outs;
        const atBootMax = await steadyView(env, DEB_AGENT);
        assert.deepEqual(offlineMemoryBlocks(DEB_AGENT), [], "no offline memory before");

        let started = Date.now();
        outs = (await provider.apply(id, outs, inputs({ vcpus: 2, memory: "1GiB" }))).outs;
        const growMs = Date.now() - started;
        assert.equal(outs.hotplugCurrentKiB, 512 * MiB, "libvirt: the device plugged 512MiB");
        assert.deepEqual(offlineMemoryBlocks(DEB_AGENT), [], "the agent onlined every plugged block");
        const grown = await waitForView(env, DEB_AGENT, "MemTotal up by 512MiB", (v) => Math.abs(v.memTotalKiB - atBootMax.memTotalKiB - 512 * MiB) <= 8 * MiB);
        assert.ok(outs.guestMemoryKiB !== null);
        assertNear(outs.guestMemoryKiB, grown.memTotalKiB, "guestMemoryKiB against the guest's MemTotal");

        started = Date.now();
        outs = (await provider.apply(id, outs, inputs({ vcpus: 2, memory: "512MiB" }))).outs;
        const shrinkMs = Date.now() - started;
        assert.equal(outs.hotplugRequestedKiB, 0);
        assert.ok(outs.guestMemoryKiB !== null);
        const shrunk = await waitForView(env, DEB_AGENT, "MemTotal back down", (v) => v.memTotalKiB < grown.memTotalKiB - 256 * MiB);
        assertNear(shrunk.memTotalKiB, atBootMax.memTotalKiB + (outs.hotplugCurrentKiB ?? 0), "MemTotal: the boot maximum plus what is still plugged");
        assertNear(outs.guestMemoryKiB, shrunk.memTotalKiB, "guestMemoryKiB after the shrink: the guest's total, not the one before");
        console.log(`      MemTotal ${atBootMax.memTotalKiB} → ${grown.memTotalKiB} → ${shrunk.memTotalKiB} kB (guestMemoryKiB ${outs.guestMemoryKiB}); ` +
            `grow ${growMs} ms, shrink ${shrinkMs} ms, still plugged ${outs.hotplugCurrentKiB} KiB`);
        assert.deepEqual([domId(DEB_AGENT), qemuPid(DEB_AGENT)], ids, "same domain id and QEMU process");
    });
});

describe("rig: the guest's own view, without a guest agent (Debian, pll-deb2)", function () {
    this.timeout(600_000);
    let env: RigEnv;
    let id = "";
    let outs: DomainResourcesOutputs;
    const inputs = (fields: Partial<DomainResourcesInputs>): DomainResourcesInputs => ({ connection: rigConnection(env), domain: DEB_NO_AGENT, ...fields });

    before(async function () {
        env = rigUp();
        resetGuest(DEB_NO_AGENT);
        await waitForView(env, DEB_NO_AGENT, "MemTotal reported", (v) => v.memTotalKiB > 0, 120_000);
        ({ id, outs } = await provider.create(inputs({ vcpus: 1 })));
    });

    after(function () {
        resetGuestInBackground(DEB_NO_AGENT);
    });

    it("vCPUs 1 → 3: libvirt plugs 3, the guest's count is unknown (null), and the engine's log says why and how to fix it", async () => {
        assert.deepEqual([outs.guestAgent, outs.guestVcpus], [false, null]);
        const { result, warnings } = await withWarnings(() => provider.apply(id, outs, inputs({ vcpus: 3 })));
        outs = result.outs;
        assert.equal(vcpuCounts(liveXml(DEB_NO_AGENT)).current, 3, "libvirt: live");
        assert.deepEqual([outs.currentVcpus, outs.guestVcpus, outs.guestAgent], [3, null, false]);
        // 3 vCPUs on this 2-CPU host also warn of overcommit; the agent's warning is the one here.
        const agent = warnings.filter((w) => /guest agent/.test(w));
        assert.equal(agent.length, 1, `one warning about the agent, got: ${warnings.join(" | ")}`);
        assert.match(agent[0], /domain 'pll-deb2': 3 vCPUs plugged live, but no guest agent answered \(.*not configured.*\)/);
        assert.match(agent[0], /Install qemu-guest-agent in the guest and give the domain its channel/);
        assert.match(agent[0], /SUBSYSTEM=="cpu", ACTION=="add"/);
        // Why the warning matters: the guest itself kept the hot-added CPUs offline.
        await sleep(3000);
        assert.equal(debianView(env, DEB_NO_AGENT)?.onlineCpus, 1, "Debian without the agent: 1 CPU online");
    });

    it("vCPUs 3 → 1 without the agent: reboot-required as before; refused under rebootPolicy never, nothing changed", async () => {
        const news = inputs({ vcpus: 1 });
        assert.equal(previewKind(outs, news, "vcpus"), "reboot");
        const [live, config] = [liveXml(DEB_NO_AGENT), configXml(DEB_NO_AGENT)];
        await rejectsWith(provider.update(id, outs, news), InputError,
            [/need a reboot/, /vcpus: 3 → 1 \(vCPUs cannot be removed from a running guest without its agent\)/]);
        assert.equal(liveXml(DEB_NO_AGENT), live);
        assert.equal(configXml(DEB_NO_AGENT), config);
    });

    it("memory past the boot maximum without the agent: plugged, and the guest's own total reported as it is, with the hint", async () => {
        outs = (await provider.apply(id, outs, inputs({ vcpus: 3, memory: "512MiB" }))).outs;
        const before = await steadyView(env, DEB_NO_AGENT);
        const { result, warnings } = await withWarnings(() => provider.apply(id, outs, inputs({ vcpus: 3, memory: "1GiB" })));
        outs = result.outs;
        assert.equal(outs.hotplugCurrentKiB, 512 * MiB, "libvirt: the device plugged 512MiB");
        const after = debianView(env, DEB_NO_AGENT);
        assert.ok(after);
        assertNear(after.memTotalKiB, before.memTotalKiB, "the guest's MemTotal did not move: the blocks are offline");
        assert.ok(outs.guestMemoryKiB !== null);
        assertNear(outs.guestMemoryKiB, after.memTotalKiB, "guestMemoryKiB is the guest's total, not libvirt's");
        const memory = warnings.filter((w) => /total memory/.test(w));
        assert.equal(memory.length, 1, `one warning about the guest's memory, got: ${warnings.join(" | ")}`);
        assert.match(memory[0], /domain 'pll-deb2': the guest reports \d+\S* total memory, about \d+\S* was expected with its virtio-mem device holding 512MiB\. The guest has not onlined the memory/);
        assert.match(memory[0], /Install qemu-guest-agent .*, or boot the guest with memhp_default_state=online, or add the udev rule/);
    });
});
