import assert from "node:assert/strict";
import { memoryGrowth, pendingDifferences, planResources } from "../../provider/domain-resources-plan";
import { balloonView, splitMemory } from "../../provider/virtio-mem";
import { DomainXml, parseDomainXml } from "../../provider/xml/domain-xml";

const MiB = 1024;
const GiB = 1024 * 1024;

interface Sizes {
    maxMemKiB: number;
    curMemKiB: number;
    maxVcpus: number;
    vcpus: number;
}

/** A small dumpxml: running ones carry an id. */
function domainXml(s: Sizes, running: boolean): DomainXml {
    return parseDomainXml(`<domain type='kvm'${running ? " id='7'" : ""}>
  <name>vm1</name>
  <memory unit='KiB'>${s.maxMemKiB}</memory>
  <currentMemory unit='KiB'>${s.curMemKiB}</currentMemory>
  <vcpu placement='static' current='${s.vcpus}'>${s.maxVcpus}</vcpu>
  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>
  <devices/>
</domain>`);
}

const BASE: Sizes = { maxMemKiB: 4 * GiB, curMemKiB: 1 * GiB, maxVcpus: 4, vcpus: 2 };
const D = "--domain=vm1";

/** Config and running guest alike, as after a boot. */
function same(s: Sizes = BASE): [DomainXml, DomainXml] {
    return [domainXml(s, false), domainXml(s, true)];
}

describe("domain-resources-plan: planResources", () => {
    it("the XML helper reads what the plan needs", () => {
        const [config, live] = same();
        assert.equal(config.memoryKiB, 4 * GiB);
        assert.equal(config.currentMemoryKiB, 1 * GiB);
        assert.equal(config.maxVcpus, 4);
        assert.equal(config.currentVcpus, 2);
        assert.equal(live.id, "7");
        assert.equal(config.id, undefined);
    });

    it("memory up within the maximum: setmem --config and --live, no reboot", () => {
        const [config, live] = same();
        const plan = planResources("vm1", config, live, { memoryKiB: 2 * GiB });
        assert.deepEqual(plan.configCommands, [["setmem", D, `--size=${2 * GiB}KiB`, "--config"]]);
        assert.deepEqual(plan.liveCommands, [["setmem", D, `--size=${2 * GiB}KiB`, "--live"]]);
        assert.deepEqual(plan.rebootChanges, []);
        assert.deepEqual(plan.expectedConfig, { memoryKiB: 2 * GiB, maxMemoryKiB: 4 * GiB, vcpus: 2, maxVcpus: 4 });
        assert.equal(plan.expectedLiveVcpus, undefined);
    });

    it("memory up to exactly the running maximum stays live", () => {
        const [config, live] = same();
        const plan = planResources("vm1", config, live, { memoryKiB: 4 * GiB });
        assert.deepEqual(plan.liveCommands, [["setmem", D, `--size=${4 * GiB}KiB`, "--live"]]);
        assert.deepEqual(plan.rebootChanges, []);
    });

    it("memory down: setmem --config and --live, no reboot", () => {
        const [config, live] = same();
        const plan = planResources("vm1", config, live, { memoryKiB: 512 * MiB });
        assert.deepEqual(plan.configCommands, [["setmem", D, `--size=${512 * MiB}KiB`, "--config"]]);
        assert.deepEqual(plan.liveCommands, [["setmem", D, `--size=${512 * MiB}KiB`, "--live"]]);
        assert.deepEqual(plan.rebootChanges, []);
    });

    it("memory above the running maximum: setmaxmem before setmem in the config, reboot lines, no live setmem", () => {
        const [config, live] = same();
        const plan = planResources("vm1", config, live, { memoryKiB: 8 * GiB });
        assert.deepEqual(plan.configCommands, [
            ["setmaxmem", D, `--size=${8 * GiB}KiB`, "--config"],
            ["setmem", D, `--size=${8 * GiB}KiB`, "--config"],
        ]);
        assert.deepEqual(plan.liveCommands, []);
        assert.deepEqual(plan.rebootChanges, [
            "maxMemory: 4GiB → 8GiB (the maximum changes only at boot)",
            "memory: 1GiB → 8GiB (above the running maximum 4GiB)",
        ]);
        assert.deepEqual(plan.expectedConfig, { memoryKiB: 8 * GiB, maxMemoryKiB: 8 * GiB, vcpus: 2, maxVcpus: 4 });
    });

    it("maxMemory raise: setmaxmem --config only, and a reboot line", () => {
        const [config, live] = same();
        const plan = planResources("vm1", config, live, { maxMemoryKiB: 8 * GiB });
        assert.deepEqual(plan.configCommands, [["setmaxmem", D, `--size=${8 * GiB}KiB`, "--config"]]);
        assert.deepEqual(plan.liveCommands, []);
        assert.deepEqual(plan.rebootChanges, ["maxMemory: 4GiB → 8GiB (the maximum changes only at boot)"]);
        assert.equal(plan.expectedConfig.memoryKiB, 1 * GiB);
    });

    it("maxMemory and memory raised together: maximum first, memory within the old running maximum stays live", () => {
        const [config, live] = same();
        const plan = planResources("vm1", config, live, { maxMemoryKiB: 8 * GiB, memoryKiB: 2 * GiB });
        assert.deepEqual(plan.configCommands, [
            ["setmaxmem", D, `--size=${8 * GiB}KiB`, "--config"],
            ["setmem", D, `--size=${2 * GiB}KiB`, "--config"],
        ]);
        assert.deepEqual(plan.liveCommands, [["setmem", D, `--size=${2 * GiB}KiB`, "--live"]]);
        assert.deepEqual(plan.rebootChanges, ["maxMemory: 4GiB → 8GiB (the maximum changes only at boot)"]);
    });

    it("maxMemory lowered under the current memory: current shrinks first, then the maximum", () => {
        const [config, live] = same();
        const plan = planResources("vm1", config, live, { maxMemoryKiB: 512 * MiB });
        assert.deepEqual(plan.configCommands, [
            ["setmem", D, `--size=${512 * MiB}KiB`, "--config"],
            ["setmaxmem", D, `--size=${512 * MiB}KiB`, "--config"],
        ]);
        assert.deepEqual(plan.expectedConfig.memoryKiB, 512 * MiB);
        assert.deepEqual(plan.liveCommands, [["setmem", D, `--size=${512 * MiB}KiB`, "--live"]]);
        assert.deepEqual(plan.rebootChanges, ["maxMemory: 4GiB → 512MiB (the maximum changes only at boot)"]);
    });

    it("vcpus up within the maximum: setvcpus --config and --live, expected live count", () => {
        const [config, live] = same();
        const plan = planResources("vm1", config, live, { vcpus: 3 });
        assert.deepEqual(plan.configCommands, [["setvcpus", D, "--count=3", "--config"]]);
        assert.deepEqual(plan.liveCommands, [["setvcpus", D, "--count=3", "--live"]]);
        assert.deepEqual(plan.rebootChanges, []);
        assert.equal(plan.expectedLiveVcpus, 3);
    });

    it("vcpus down: config only, and a reboot line (vCPUs cannot be removed live)", () => {
        const [config, live] = same();
        const plan = planResources("vm1", config, live, { vcpus: 1 });
        assert.deepEqual(plan.configCommands, [["setvcpus", D, "--count=1", "--config"]]);
        assert.deepEqual(plan.liveCommands, []);
        assert.deepEqual(plan.rebootChanges, ["vcpus: 2 → 1 (vCPUs cannot be removed from a running guest without its agent)"]);
        assert.equal(plan.expectedLiveVcpus, undefined);
    });

    it("with the agent, vcpus up: plugged live, then onlined in the guest", () => {
        const [config, live] = same();
        const plan = planResources("vm1", config, live, { vcpus: 3 }, { present: 2, online: 2 });
        assert.deepEqual(plan.liveCommands, [["setvcpus", D, "--count=3", "--live"]]);
        assert.deepEqual(plan.guestCommands, [["setvcpus", D, "--count=3", "--guest"]]);
        assert.equal(plan.expectedGuestVcpus, 3);
        assert.deepEqual(plan.rebootChanges, []);
    });

    it("with the agent, vcpus down: offlined in the guest and written to the config, live, no unplug", () => {
        const [config, live] = same();
        const plan = planResources("vm1", config, live, { vcpus: 1 }, { present: 2, online: 2 });
        assert.deepEqual(plan.configCommands, [["setvcpus", D, "--count=1", "--config"]]);
        assert.deepEqual(plan.liveCommands, []);
        assert.deepEqual(plan.guestCommands, [["setvcpus", D, "--count=1", "--guest"]]);
        assert.deepEqual(plan.rebootChanges, []);
        assert.equal(plan.expectedGuestVcpus, 1);
    });

    it("with the agent, CPUs plugged but offline in the guest (by hand, or an earlier decrease) are onlined without a plug", () => {
        const config = domainXml({ ...BASE, vcpus: 3 }, false);
        const live = domainXml({ ...BASE, vcpus: 3 }, true);
        const plan = planResources("vm1", config, live, { vcpus: 3 }, { present: 3, online: 1 });
        assert.deepEqual(plan.configCommands, []);
        assert.deepEqual(plan.liveCommands, []);
        assert.deepEqual(plan.guestCommands, [["setvcpus", D, "--count=3", "--guest"]]);
    });

    it("with the agent, nothing to do when the guest already has the count online", () => {
        const [config, live] = same();
        const plan = planResources("vm1", config, live, { vcpus: 2 }, { present: 2, online: 2 });
        assert.deepEqual([plan.configCommands, plan.liveCommands, plan.guestCommands, plan.rebootChanges], [[], [], [], []]);
    });

    it("with the agent, vcpus left unmanaged: the guest's own count is not touched", () => {
        const [config, live] = same();
        const plan = planResources("vm1", config, live, { memoryKiB: 2 * GiB }, { present: 2, online: 1 });
        assert.deepEqual(plan.guestCommands, []);
    });

    it("with the agent, vcpus above the running maximum still need a reboot, and nothing goes to the guest", () => {
        const [config, live] = same();
        const plan = planResources("vm1", config, live, { vcpus: 6, maxVcpus: 6 }, { present: 2, online: 2 });
        assert.deepEqual(plan.guestCommands, []);
        assert.ok(plan.rebootChanges.some((line) => line.startsWith("vcpus: 2 → 6")));
    });

    it("vcpus above the maximum: maximum raised first in the config, two reboot lines", () => {
        const [config, live] = same();
        const plan = planResources("vm1", config, live, { vcpus: 6 });
        assert.deepEqual(plan.configCommands, [
            ["setvcpus", D, "--count=6", "--maximum", "--config"],
            ["setvcpus", D, "--count=6", "--config"],
        ]);
        assert.deepEqual(plan.liveCommands, []);
        assert.deepEqual(plan.rebootChanges, [
            "maxVcpus: 4 → 6 (the maximum changes only at boot)",
            "vcpus: 2 → 6 (above the running maximum 4)",
        ]);
        assert.deepEqual(plan.expectedConfig, { memoryKiB: 1 * GiB, maxMemoryKiB: 4 * GiB, vcpus: 6, maxVcpus: 6 });
    });

    it("maxVcpus lowered under the current count: current before maximum", () => {
        const [config, live] = same({ ...BASE, vcpus: 3 });
        const plan = planResources("vm1", config, live, { maxVcpus: 2 });
        assert.deepEqual(plan.configCommands, [
            ["setvcpus", D, "--count=2", "--config"],
            ["setvcpus", D, "--count=2", "--maximum", "--config"],
        ]);
        assert.deepEqual(plan.liveCommands, []);
        assert.deepEqual(plan.rebootChanges, [
            "maxVcpus: 4 → 2 (the maximum changes only at boot)",
            "vcpus: 3 → 2 (vCPUs cannot be removed from a running guest without its agent)",
        ]);
    });

    it("maxVcpus raised alone: --maximum only, reboot line", () => {
        const [config, live] = same();
        const plan = planResources("vm1", config, live, { maxVcpus: 8 });
        assert.deepEqual(plan.configCommands, [["setvcpus", D, "--count=8", "--maximum", "--config"]]);
        assert.deepEqual(plan.rebootChanges, ["maxVcpus: 4 → 8 (the maximum changes only at boot)"]);
    });

    it("shut-off domain (live undefined): config commands only, never live commands or reboot lines", () => {
        const config = domainXml(BASE, false);
        for (const desired of [{ memoryKiB: 8 * GiB }, { vcpus: 1 }, { vcpus: 6 }, { maxVcpus: 2 }, { memoryKiB: 2 * GiB, vcpus: 3 }]) {
            const plan = planResources("vm1", config, undefined, desired);
            assert.ok(plan.configCommands.length > 0, JSON.stringify(desired));
            assert.ok(plan.configCommands.every((c) => c[c.length - 1] === "--config"));
            assert.deepEqual(plan.liveCommands, [], JSON.stringify(desired));
            assert.deepEqual(plan.rebootChanges, [], JSON.stringify(desired));
            assert.equal(plan.expectedLiveVcpus, undefined);
        }
        const plan = planResources("vm1", config, undefined, { memoryKiB: 8 * GiB });
        assert.deepEqual(plan.configCommands, [
            ["setmaxmem", D, `--size=${8 * GiB}KiB`, "--config"],
            ["setmem", D, `--size=${8 * GiB}KiB`, "--config"],
        ]);
    });

    it("nothing to do: no commands at all", () => {
        const [config, live] = same();
        for (const desired of [{}, { memoryKiB: 1 * GiB, maxMemoryKiB: 4 * GiB, vcpus: 2, maxVcpus: 4 }, { memoryKiB: 1 * GiB }, { vcpus: 2 }]) {
            const plan = planResources("vm1", config, live, desired);
            assert.deepEqual(plan.configCommands, [], JSON.stringify(desired));
            assert.deepEqual(plan.liveCommands, [], JSON.stringify(desired));
            assert.deepEqual(plan.rebootChanges, [], JSON.stringify(desired));
            assert.deepEqual(plan.expectedConfig, { memoryKiB: 1 * GiB, maxMemoryKiB: 4 * GiB, vcpus: 2, maxVcpus: 4 });
        }
    });

    it("a config already changed (pending reboot) needs no config command but still the live one", () => {
        const config = domainXml({ ...BASE, curMemKiB: 2 * GiB }, false);
        const live = domainXml(BASE, true);
        const plan = planResources("vm1", config, live, { memoryKiB: 2 * GiB });
        assert.deepEqual(plan.configCommands, []);
        assert.deepEqual(plan.liveCommands, [["setmem", D, `--size=${2 * GiB}KiB`, "--live"]]);
    });

    it("memory not managed: a balloon set by hand (setmem --live) stays, whatever else the plan changes", () => {
        const config = domainXml({ ...BASE, curMemKiB: 4 * GiB }, false);
        const live = domainXml({ ...BASE, curMemKiB: 1 * GiB }, true);
        for (const desired of [{}, { vcpus: 3 }, { maxVcpus: 8 }, { maxMemoryKiB: 8 * GiB }]) {
            const plan = planResources("vm1", config, live, desired);
            assert.ok(!plan.liveCommands.some((c) => c[0] === "setmem"), JSON.stringify(plan.liveCommands));
            assert.equal(plan.expectedBalloonKiB, undefined);
            assert.ok(!plan.rebootChanges.some((c) => c.startsWith("memory:")), JSON.stringify(plan.rebootChanges));
        }
        // Managed, it is put back.
        assert.deepEqual(planResources("vm1", config, live, { memoryKiB: 4 * GiB }).liveCommands, [["setmem", D, `--size=${4 * GiB}KiB`, "--live"]]);
    });

    it("puts the domain name in one --domain= argument", () => {
        const [config, live] = same();
        const plan = planResources("my vm; rm", config, live, { vcpus: 3 });
        assert.deepEqual(plan.liveCommands, [["setvcpus", "--domain=my vm; rm", "--count=3", "--live"]]);
    });
});

describe("domain-resources-plan: pendingDifferences", () => {
    it("nothing pending for a shut-off domain", () => {
        assert.deepEqual(pendingDifferences(domainXml(BASE, false), undefined), []);
    });

    it("nothing pending when config and live agree", () => {
        const [config, live] = same();
        assert.deepEqual(pendingDifferences(config, live), []);
    });

    it("lists maximum and vCPU differences", () => {
        const config = domainXml({ maxMemKiB: 8 * GiB, curMemKiB: 1 * GiB, maxVcpus: 6, vcpus: 1 }, false);
        const live = domainXml(BASE, true);
        assert.deepEqual(pendingDifferences(config, live), [
            "maxMemory: 4GiB now, 8GiB after reboot",
            "maxVcpus: 4 now, 6 after reboot",
            "vcpus: 2 now, 1 after reboot",
        ]);
    });

    it("with the agent's answer, vCPUs offlined in the guest to the config's count are not pending", () => {
        const config = domainXml({ ...BASE, vcpus: 1 }, false);
        const live = domainXml({ ...BASE, vcpus: 3 }, true);
        assert.deepEqual(pendingDifferences(config, live, { present: 3, online: 1 }), []);
        assert.deepEqual(pendingDifferences(config, live, null), ["vcpus: 3 now, 1 after reboot"]);
    });

    it("ignores a live memory that differs only through the balloon", () => {
        const config = domainXml(BASE, false);
        const live = domainXml({ ...BASE, curMemKiB: 3 * GiB }, true);
        assert.deepEqual(pendingDifferences(config, live), []);
    });

    it("lists memory when the config's memory exceeds the running maximum", () => {
        const config = domainXml({ ...BASE, maxMemKiB: 8 * GiB, curMemKiB: 6 * GiB }, false);
        const live = domainXml(BASE, true);
        assert.deepEqual(pendingDifferences(config, live), [
            "maxMemory: 4GiB now, 8GiB after reboot",
            "memory: 1GiB now, 6GiB after reboot",
        ]);
    });
});

describe("domain-resources-plan: memoryGrowth (what the plan raises, each half against itself as read)", () => {
    // 4 GiB in the config, the balloon set to 1 GiB by hand on the running guest.
    const config = domainXml({ ...BASE, curMemKiB: 4 * GiB }, false);
    const live = domainXml({ ...BASE, curMemKiB: 1 * GiB }, true);
    const growth = (desired: Parameters<typeof planResources>[3], c = config, l: DomainXml | null = live) =>
        memoryGrowth({ config: c, live: l ?? undefined, plan: planResources("vm1", c, l ?? undefined, desired), plannedConfig: c, liveSplit: false });

    it("nothing raised by vCPUs, a pin, or the sizes the domain has; the balloon raised live only; the maximum in the config only", () => {
        assert.deepEqual(growth({}), { config: false, live: false });
        assert.deepEqual(growth({ vcpus: 3 }), { config: false, live: false }, "memory not managed: the hand-set balloon stays");
        assert.deepEqual(growth({ memoryKiB: 1 * GiB }), { config: false, live: false }, "the config lowered, the balloon as it is");
        assert.deepEqual(growth({ memoryKiB: 2 * GiB }), { config: false, live: true }, "the balloon raised from 1 GiB, the config lowered from 4 GiB");
        assert.deepEqual(growth({ maxMemoryKiB: 8 * GiB }), { config: true, live: false }, "the maximum lands at the next boot");
        assert.deepEqual(growth({ memoryKiB: 4 * GiB }, domainXml({ ...BASE, curMemKiB: 2 * GiB }, false)), { config: true, live: true });
        assert.deepEqual(growth({ memoryKiB: 4 * GiB }, config, null), { config: false, live: false }, "shut off");
    });

    it("a virtio-mem guest compares like with like: the balloon with the balloon, the device's request with its request; a device added raises the config", () => {
        const device = (requested: number, running: boolean) => parseDomainXml(`<domain type='kvm'${running ? " id='7'" : ""}><name>vm1</name>
            <memory unit='KiB'>${3 * GiB}</memory><currentMemory unit='KiB'>${running ? 2 * GiB + requested : 2 * GiB}</currentMemory><vcpu>2</vcpu>
            <devices><memory model='virtio-mem'><target><size unit='KiB'>${GiB}</size><block unit='KiB'>2048</block><requested unit='KiB'>${requested}</requested>
            <current unit='KiB'>${requested}</current></target></memory></devices></domain>`);
        const raw = device(512 * MiB, false);
        // The plan and the growth see the balloon's view; the split reads the device from the XML as libvirt writes it.
        const [c, l] = [balloonView(raw), balloonView(device(512 * MiB, true))];
        const grows = (totalKiB: number) => {
            const split = splitMemory(raw, totalKiB);
            assert.ok(typeof split !== "string", String(split));
            const plan = planResources("vm1", c, l, { memoryKiB: split.balloonKiB });
            return memoryGrowth({ config: c, live: l, plan, plannedConfig: c, split, liveSplit: true });
        };
        assert.deepEqual(grows(2 * GiB + 512 * MiB), { config: false, live: false }, "the memory it has (boot 2 GiB + 512 MiB plugged)");
        assert.deepEqual(grows(2 * GiB + 256 * MiB), { config: false, live: false }, "less plugged");
        assert.deepEqual(grows(3 * GiB), { config: true, live: true }, "more plugged");
        const plain = domainXml(BASE, false);
        const withDevice = { ...plain, memoryDevices: [{ model: "virtio-mem", sizeKiB: GiB, blockKiB: 2048, requestedKiB: 0 }] };
        assert.deepEqual(memoryGrowth({ config: plain, plan: planResources("vm1", plain, undefined, {}), plannedConfig: withDevice, liveSplit: false }), { config: true, live: false });
    });
});
