import assert from "node:assert/strict";
import type { DomainResourcesInputs } from "../../provider/contract";
import { tuningSettings } from "../../provider/domain-tuning";
import { providers } from "../../provider/index";
import { InputError } from "../../provider/errors";
import { UNKNOWN_VALUE } from "../../provider/rules/rule-table";
import { checkTuningOnHost, QEMU_USAGE_MARGIN_KIB, qemuOverhead, setsMemoryLimit, TuningTarget, tuningCheckFailures } from "../../provider/tuning-checks";
import { Virsh } from "../../provider/virsh/virsh";
import { parseDomainXml } from "../../provider/xml/domain-xml";

const base = { domain: "web1", connection: { host: "hv1" } };

/** The one check failure of these inputs: its property, and its reason matching every pattern. */
function refused(inputs: Record<string, unknown>, property: string, ...patterns: RegExp[]): void {
    const failures = tuningCheckFailures({ ...base, ...inputs });
    assert.equal(failures.length, 1, JSON.stringify(failures));
    assert.equal(failures[0].property, property);
    for (const pattern of [/domain 'web1'/, ...patterns]) assert.match(failures[0].reason, pattern);
}

describe("tuning checks at check (the inputs alone)", () => {
    it("accepts every value in libvirt's ranges, no cap (-1), unlimited, and values unknown during preview", () => {
        const inputs = {
            ...base, memory: "512MiB", maxVcpus: 4,
            cpuTune: { shares: 2, period: 1000, quota: 17592186044415, emulatorPeriod: 1000000, emulatorQuota: -1, vcpuPins: { 0: "0-1", 3: "1" }, emulatorPin: "0" },
            memoryTune: { hardLimit: "1536MiB", softLimit: "1GiB", swapHardLimit: "unlimited" }, blkioWeight: 1000,
        };
        assert.deepEqual(tuningCheckFailures(inputs), []);
        assert.deepEqual(tuningCheckFailures({ ...base, cpuTune: { quota: UNKNOWN_VALUE, vcpuPins: { 0: UNKNOWN_VALUE } }, memoryTune: UNKNOWN_VALUE }), []);
    });

    it("refuses a quota below 1000 µs or above libvirt's maximum, and a period outside 1000–1000000", () => {
        refused({ cpuTune: { quota: 999 } }, "cpuTune.quota", /999 is outside libvirt's range 1000–17592186044415 \(or -1: no cap\)/, /set a whole number within it/);
        refused({ cpuTune: { quota: 17592186044416 } }, "cpuTune.quota", /17592186044416/);
        refused({ cpuTune: { emulatorQuota: 0 } }, "cpuTune.emulatorQuota", /0 is outside/);
        refused({ cpuTune: { period: 999 } }, "cpuTune.period", /999 is outside libvirt's range 1000–1000000;/);
        refused({ cpuTune: { emulatorPeriod: 1000001 } }, "cpuTune.emulatorPeriod", /1000001/);
        refused({ cpuTune: { period: 1500.5 } }, "cpuTune.period", /1500.5/);
    });

    it("refuses shares outside 2–262144 and an I/O weight outside 100–1000", () => {
        refused({ cpuTune: { shares: 1 } }, "cpuTune.shares", /1 is outside libvirt's range 2–262144/);
        refused({ cpuTune: { shares: 262145 } }, "cpuTune.shares", /262145/);
        refused({ blkioWeight: 99 }, "blkioWeight", /99 is outside libvirt's range 100–1000/);
        refused({ blkioWeight: 1001 }, "blkioWeight", /1001/);
    });

    it("refuses a pin that is no CPU list, a key that is no vCPU, and a vCPU beyond maxVcpus", () => {
        refused({ cpuTune: { vcpuPins: { 0: "0-" } } }, "cpuTune.vcpuPins.0", /"0-" is not a CPU list: write host CPU numbers and ranges, e.g. "0-3,6"/);
        refused({ cpuTune: { vcpuPins: { a: "0" } } }, "cpuTune.vcpuPins.a", /not a vCPU number/);
        // libvirt writes vcpu='0': "00" would pin vCPU 0 yet never read back as "00".
        refused({ cpuTune: { vcpuPins: { "00": "0" } } }, "cpuTune.vcpuPins.00", /"00" is not a vCPU number as libvirt writes it; .* without leading zeros/);
        refused({ cpuTune: { vcpuPins: { "01": "0" } } }, "cpuTune.vcpuPins.01", /without leading zeros/);
        refused({ maxVcpus: 2, cpuTune: { vcpuPins: { 2: "0" } } }, "cpuTune.vcpuPins.2", /vCPU 2 does not exist: maxVcpus is 2, so the vCPUs are 0–1\. Fix: pin only those, or raise maxVcpus/);
        refused({ cpuTune: { emulatorPin: "x" } }, "cpuTune.emulatorPin", /not a CPU list/);
        refused({ cpuTune: { pins: {} } }, "cpuTune", /unknown field pins/);
    });

    it("refuses a hard limit below the memory the inputs ask for plus QEMU's overhead, with the numbers and the fix", () => {
        refused({ maxMemory: "2GiB", memoryTune: { hardLimit: "2GiB" } }, "memoryTune.hardLimit",
            /memoryTune\.hardLimit 2GiB on domain 'web1' is below what its QEMU can use: the memory the inputs ask for 2GiB \+ QEMU's overhead 1GiB \(1GiB for QEMU itself\) = 3GiB/,
            /the kernel kills QEMU/, /Fix: set memoryTune\.hardLimit to at least 3GiB, or "unlimited", or leave it out/);
        assert.deepEqual(tuningCheckFailures({ ...base, maxMemory: "2GiB", memoryTune: { hardLimit: "3GiB" } }), []);
    });

    it("refuses a swap-hard limit below the hard limit, and a soft limit above it", () => {
        refused({ memoryTune: { hardLimit: "4GiB", swapHardLimit: "3GiB" } }, "memoryTune.swapHardLimit",
            /swapHardLimit 3GiB on domain 'web1' is below the hard limit 4GiB/, /Fix: raise swapHardLimit to at least 4GiB, or lower hardLimit/);
        refused({ memoryTune: { hardLimit: "unlimited", swapHardLimit: "8GiB" } }, "memoryTune.swapHardLimit", /below the hard limit unlimited/);
        refused({ memoryTune: { hardLimit: "4GiB", softLimit: "5GiB" } }, "memoryTune.softLimit", /softLimit 5GiB on domain 'web1' is above the hard limit 4GiB/, /Fix: set softLimit to at most 4GiB/);
        // Without a hard limit in the inputs the domain's decides, at apply: a swap-hard or soft limit alone passes check.
        assert.deepEqual(tuningCheckFailures({ ...base, memoryTune: { swapHardLimit: "8GiB" } }), []);
        assert.deepEqual(tuningCheckFailures({ ...base, memoryTune: { softLimit: "1GiB" } }), []);
    });

    it("are DomainResources' own check: pulumi preview reports them before anything runs", async () => {
        const result = await providers.domainResources.check!({}, { ...base, cpuTune: { quota: 10 }, memoryTune: { hardLimit: "1GiB" }, memory: "512MiB" });
        assert.deepEqual(result.failures?.map((f) => f.property), ["cpuTune.quota", "memoryTune.hardLimit"]);
    });

    it("refuses a limit beyond libvirt's largest (2^53 KiB or more), where numbers no longer compare exactly", () => {
        refused({ memoryTune: { hardLimit: "9007199254740993KiB" } }, "memoryTune.hardLimit", /"9007199254740993KiB" is beyond libvirt's largest limit \(2\^53 - 2 KiB\); for no limit write "unlimited"/);
        refused({ memoryTune: { swapHardLimit: "8589934592TiB" } }, "memoryTune.swapHardLimit", /beyond libvirt's largest limit/);
        assert.deepEqual(tuningCheckFailures({ ...base, memoryTune: { hardLimit: "1024TiB" } }), []);
    });

    it("refuses a limit that is no size, as memory does (a bare number in a string is KiB to virsh)", () => {
        refused({ memoryTune: { hardLimit: "4096" } }, "memoryTune.hardLimit", /needs a unit/);
        refused({ memoryTune: { softLimit: "4 parsecs" } }, "memoryTune.softLimit", /unknown unit/);
        refused({ memoryTune: { hard: "4GiB" } }, "memoryTune", /unknown field hard/);
    });
});

/** What the plan raises (domain-resources-plan's memoryGrowth, tested there). */
const NO_GROWTH = { config: false, live: false };
const GROWS = { config: true, live: true };

describe("tuning checks at apply (the domain and the host)", () => {
    const virsh = new Virsh({ label: "hv1" } as never, "qemu:///system", "web1", false, 30);
    // A TCG domain like the rig's: 512 MiB, 4 vCPUs, a hard limit of 3 GiB already set.
    const config = parseDomainXml(`<domain type='qemu'><name>web1</name><memory unit='KiB'>524288</memory><vcpu current='1'>4</vcpu>
        <memtune><hard_limit unit='KiB'>3145728</hard_limit></memtune></domain>`);
    const target: TuningTarget = { config, live: config, desired: {}, growth: NO_GROWTH, hostCpus: [0, 1], qemuRssKiB: 200 * 1024 };

    function refusedAtApply(inputs: Partial<DomainResourcesInputs>, at: TuningTarget, ...patterns: RegExp[]): InputError {
        let caught: unknown;
        try {
            checkTuningOnHost(virsh, tuningSettings(inputs), at);
        } catch (error) {
            caught = error;
        }
        assert.ok(caught instanceof InputError, `expected an InputError, got ${String(caught)}`);
        for (const pattern of [/domain 'web1'/, /nothing was changed/, /Fix: /, ...patterns]) assert.match(caught.message, pattern);
        return caught;
    }

    it("QEMU's overhead under TCG counts the translation cache (its tb-cache, else QEMU's default 1 GiB); under KVM QEMU's own part alone", () => {
        assert.deepEqual(qemuOverhead(config), { kib: 2 * 1024 * 1024, parts: "1GiB for QEMU itself + 1GiB of TCG translation cache" });
        assert.equal(qemuOverhead({ ...config, type: "kvm" }).kib, 1024 * 1024);
        assert.equal(qemuOverhead({ ...config, tbCacheKiB: 2 * 1024 * 1024 }).kib, 3 * 1024 * 1024);
    });

    it("accepts pins on online CPUs of existing vCPUs and limits that leave room", () => {
        checkTuningOnHost(virsh, tuningSettings({ cpuTune: { vcpuPins: { 3: "1" }, emulatorPin: "0-1" } }), target);
        const memoryTune = { hardLimit: "2560MiB", softLimit: "1GiB" };
        checkTuningOnHost(virsh, tuningSettings({ memoryTune }), target);
    });

    it("refuses a pin to a CPU the host does not have online, naming the online CPUs", () => {
        refusedAtApply({ cpuTune: { vcpuPins: { 0: "1-2" } } }, target,
            /cpuTune\.vcpuPins\.0 "1-2" on domain 'web1' names host CPU 2, which the host does not have online \(online: 0-1\)/, /Fix: pin to CPUs among 0-1/);
        refusedAtApply({ cpuTune: { emulatorPin: "5" } }, target, /emulatorPin "5" .* names host CPU 5/);
    });

    it("refuses a vCPU beyond the domain's maximum (its config, or the maxVcpus asked for)", () => {
        refusedAtApply({ cpuTune: { vcpuPins: { 4: "0" } } }, target, /vCPU 4 does not exist on domain 'web1': it has at most 4 vCPUs \(0–3\)/);
        refusedAtApply({ cpuTune: { vcpuPins: { 2: "0" } } }, { ...target, desired: { maxVcpus: 2 } }, /vCPU 2 does not exist/);
    });

    it("refuses a hard limit below the guest's ceiling (a virtio-mem device's size and a bigger memory asked for counted) plus the TCG overhead", () => {
        const error = refusedAtApply({ memoryTune: { hardLimit: "2GiB" } }, target,
            /hardLimit 2GiB on domain 'web1' is below what its QEMU can use: its memory ceiling .* 512MiB \+ QEMU's overhead 2GiB \(1GiB for QEMU itself \+ 1GiB of TCG translation cache\) = 2560MiB/,
            /Fix: set memoryTune\.hardLimit to at least 2560MiB/);
        assert.equal(error.context.device, "memoryTune.hardLimit");
        refusedAtApply({ memoryTune: { hardLimit: "2560MiB" } }, { ...target, desired: { memoryKiB: 1024 * 1024 } }, /ceiling .* 1GiB \+ .* = 3GiB/);
    });

    it("refuses memory growing past a hard limit the inputs do not manage (set by hand, or left by inputs that no longer manage it), in the half that has it", () => {
        const limited = parseDomainXml(`<domain type='kvm'><name>web1</name><memory unit='KiB'>4194304</memory><vcpu>2</vcpu>
            <memtune><hard_limit unit='KiB'>5242880</hard_limit></memtune></domain>`);
        const growing: TuningTarget = { config: limited, desired: { maxMemoryKiB: 8 * 1024 * 1024, memoryKiB: 8 * 1024 * 1024 }, growth: GROWS };
        const error = refusedAtApply({}, growing,
            /the hard limit the config has \(not managed by these inputs\) 5GiB on domain 'web1' is below what its QEMU can use: its memory ceiling .* 8GiB \+ QEMU's overhead 1GiB .* = 9GiB/,
            /Fix: set memoryTune\.hardLimit to at least 9GiB or "unlimited" \(or raise it by hand: virsh memtune 'web1' --hard-limit 9437184 --config\), or ask for less memory/);
        assert.equal(error.context.device, "memoryTune.hardLimit");
        // Managed limits other than the hard one leave it unmanaged; the running domain's own limit counts for the live half.
        refusedAtApply({ memoryTune: { softLimit: "1GiB" } }, growing, /the hard limit the config has/);
        const unlimitedConfig = parseDomainXml(`<domain type='kvm'><name>web1</name><memory unit='KiB'>4194304</memory><vcpu>2</vcpu></domain>`);
        refusedAtApply({}, { config: unlimitedConfig, live: limited, desired: { memoryKiB: 6 * 1024 * 1024 }, growth: GROWS }, /the hard limit the running domain has .* 5GiB .* = 7GiB/, /virsh memtune 'web1' --hard-limit 7340032 --live\)/);
        // Room enough, or a managed limit that replaces it: accepted.
        checkTuningOnHost(virsh, [], { config: limited, desired: { memoryKiB: 4 * 1024 * 1024 }, growth: GROWS });
        checkTuningOnHost(virsh, tuningSettings({ memoryTune: { hardLimit: "unlimited" } }), growing);
    });

    it("a limit not managed and too low blocks only an apply that raises what the guest can use, sets a memory limit or starts the guest; any other goes ahead with one warning per half", () => {
        const MiB = 1024;
        // 512 MiB max, 256 MiB current, a 2 GiB hard limit set by hand: under 512 MiB + 2 GiB of TCG overhead.
        const handSet = parseDomainXml(`<domain type='qemu'><name>web1</name><memory unit='KiB'>524288</memory><currentMemory unit='KiB'>262144</currentMemory><vcpu current='1'>2</vcpu>
            <memtune><hard_limit unit='KiB'>2097152</hard_limit></memtune></domain>`);
        const sets = (memoryTune: DomainResourcesInputs["memoryTune"]) => setsMemoryLimit(handSet, tuningSettings({ memoryTune }));
        assert.equal(sets({ hardLimit: "2GiB" }), false, "the limit it has, now managed");
        assert.equal(sets({ swapHardLimit: "unlimited" }), false, "a limit set to what it is");
        assert.equal(sets({ softLimit: "1GiB" }), true, "a memory limit set");

        const at: TuningTarget = { config: handSet, live: handSet, desired: {}, growth: NO_GROWTH, hostCpus: [0, 1] };
        const warnings = checkTuningOnHost(virsh, tuningSettings({ cpuTune: { vcpuPins: { 0: "1" } } }), at);
        assert.equal(warnings.length, 2, "one per half that has the limit");
        assert.match(warnings[0], /the hard limit the config has \(not managed by these inputs\) 2GiB on domain 'web1' is below what its QEMU can use: .* 512MiB \+ QEMU's overhead 2GiB .* = 2560MiB/);
        // Each half's own virsh flag (a shut-off domain has no --live), the name quoted for the shell.
        assert.match(warnings[0], /This apply goes ahead: it neither raises the memory the guest can use, nor sets a memory limit, nor starts the guest\. Fix: virsh memtune 'web1' --hard-limit 2621440 --config, or manage memoryTune\.hardLimit$/);
        assert.match(warnings[1], /the hard limit the running domain has .* Fix: virsh memtune 'web1' --hard-limit 2621440 --live, or manage memoryTune\.hardLimit$/);
        // What the plan raises decides, half by half: the balloon raised live refuses the running domain's limit.
        refusedAtApply({}, { ...at, growth: { config: false, live: true } }, /the hard limit the running domain has \(not managed by these inputs\) 2GiB/, /virsh memtune 'web1' --hard-limit 2621440 --live\)/);
        refusedAtApply({}, { ...at, growth: { config: true, live: false } }, /the hard limit the config has \(not managed by these inputs\) 2GiB/, /virsh memtune 'web1' --hard-limit 2621440 --config\)/);
        refusedAtApply({ memoryTune: { softLimit: "1GiB" } }, at, /the hard limit the config has/);
        // A swap-hard limit under the suggested hard limit is raised along (libvirt refuses a hard limit above it).
        const swapSet = { ...handSet, tuning: { ...handSet.tuning, memtuneKiB: { hard_limit: 2048 * MiB, swap_hard_limit: 2048 * MiB } } };
        assert.match(checkTuningOnHost(virsh, [], { ...at, config: swapSet, live: undefined })[0], /Fix: virsh memtune 'web1' --hard-limit 2621440 --swap-hard-limit 2621440 --config, or manage/);
        // The soft limit on cgroup v2 alike.
        const softSet = { ...handSet, tuning: { ...handSet.tuning, memtuneKiB: { soft_limit: 1024 * MiB } } };
        const v2: TuningTarget = { config: softSet, live: softSet, desired: { vcpus: 1 }, growth: NO_GROWTH, cgroupV2: true };
        assert.match(checkTuningOnHost(virsh, [], v2)[0], /the soft limit the config has .* Fix: virsh memtune 'web1' --soft-limit 2621440 --config, or manage memoryTune\.softLimit$/);
        refusedAtApply({}, { ...v2, desired: { maxMemoryKiB: 1024 * MiB }, growth: GROWS }, /the soft limit the config has/);
    });

    it("a QEMU the apply (re)starts (a reboot) starts under the config's limits: one too low is refused even when the apply raises nothing", () => {
        // 2 GiB of guest memory under a 2 GiB hard limit set with memtune --config (KVM: + 1 GiB needed).
        const low = parseDomainXml(`<domain type='kvm'><name>web1</name><memory unit='KiB'>2097152</memory><vcpu current='1'>2</vcpu>
            <memtune><hard_limit unit='KiB'>2097152</hard_limit></memtune></domain>`);
        const rebooting: TuningTarget = { config: low, desired: { maxVcpus: 4 }, growth: NO_GROWTH, restarts: true };
        refusedAtApply({}, rebooting, /the hard limit the config has \(not managed by these inputs\) 2GiB .* 2GiB \+ QEMU's overhead 1GiB .* = 3GiB/, /virsh memtune 'web1' --hard-limit 3145728 --config/);
        assert.equal(checkTuningOnHost(virsh, [], { ...rebooting, restarts: false }).length, 1, "no restart: a warning");
    });

    it("the running guest's ceiling is its <memory> (or more memory asked for): a lower maxMemory asked for lands only at boot, so it lowers the config's alone", () => {
        // The running QEMU has 4 GiB; maxMemory 2 GiB is asked for (a reboot later, configOnly).
        const four = parseDomainXml(`<domain type='kvm'><name>web1</name><memory unit='KiB'>4194304</memory><vcpu>1</vcpu></domain>`);
        const configOnly: TuningTarget = { config: four, live: four, desired: { maxMemoryKiB: 2 * 1024 * 1024, memoryKiB: 2 * 1024 * 1024 }, growth: NO_GROWTH, qemuRssKiB: 200 * 1024 };
        refusedAtApply({ memoryTune: { hardLimit: "3GiB" } }, configOnly, /hardLimit 3GiB on domain 'web1' is below .* 4GiB \+ QEMU's overhead 1GiB .* = 5GiB/);
        checkTuningOnHost(virsh, tuningSettings({ memoryTune: { hardLimit: "3GiB" } }), { ...configOnly, live: undefined });
        checkTuningOnHost(virsh, tuningSettings({ memoryTune: { hardLimit: "5GiB" } }), configOnly);
        refusedAtApply({ memoryTune: { hardLimit: "5GiB" } }, { ...configOnly, desired: { memoryKiB: 5 * 1024 * 1024 } }, /ceiling .* 5GiB \+ .* = 6GiB/);
    });

    it("refuses a hard limit lowered on the running QEMU below what it holds now (dommemstat rss) plus the margin; the config alone, or a raise, is not bound by it", () => {
        const rss = 3 * 1024 * 1024;
        assert.equal(QEMU_USAGE_MARGIN_KIB, 64 * 1024);
        // A QEMU holding 3 GiB (far beyond its 512 MiB guest + 1 GiB: the ceiling check alone would pass 3104 MiB), no limit yet.
        const unlimited = parseDomainXml(`<domain type='kvm'><name>web1</name><memory unit='KiB'>524288</memory><vcpu>1</vcpu></domain>`);
        const running: TuningTarget = { config: unlimited, live: unlimited, desired: {}, growth: NO_GROWTH, qemuRssKiB: rss };
        refusedAtApply({ memoryTune: { hardLimit: "3104MiB" } }, running,
            /memoryTune\.hardLimit 3104MiB on domain 'web1' is below what its running QEMU holds now: its resident memory \(virsh dommemstat rss\) 3GiB \+ a margin of 64MiB = 3136MiB/,
            /Fix: set memoryTune\.hardLimit to at least 3136MiB, or "unlimited"/);
        checkTuningOnHost(virsh, tuningSettings({ memoryTune: { hardLimit: "3136MiB" } }), running);
        checkTuningOnHost(virsh, tuningSettings({ memoryTune: { hardLimit: "3104MiB" } }), { ...running, live: undefined });
        // What it holds unknown (no rss read): a limit lowered live is refused, not checked against nothing.
        refusedAtApply({ memoryTune: { hardLimit: "3136MiB" } }, { ...running, qemuRssKiB: undefined },
            /memoryTune\.hardLimit 3136MiB would lower the limit of domain 'web1''s running QEMU, but what it holds now \(virsh dommemstat rss\) could not be read/, /Fix: run pulumi up again \(its read has it\), or keep the running domain's limit \(unlimited\)/);
        // Raised from a lower limit: the running QEMU already lives under the old one.
        const limited = { ...unlimited, tuning: { ...unlimited.tuning, memtuneKiB: { hard_limit: 3 * 1024 * 1024 } } };
        checkTuningOnHost(virsh, tuningSettings({ memoryTune: { hardLimit: "3104MiB" } }), { ...running, config: limited, live: limited });
    });

    it("on cgroup v2 (memory.high): refuses a soft limit below the ceiling plus QEMU's overhead, asked for or already set; on v1 it is only a hint", () => {
        const v2: TuningTarget = { ...target, cgroupV2: true };
        refusedAtApply({ memoryTune: { softLimit: "512MiB" } }, v2,
            /memoryTune\.softLimit 512MiB on domain 'web1' is below what its QEMU can use on this cgroup v2 host: .* 512MiB \+ QEMU's overhead 2GiB = 2560MiB; libvirt writes it to memory\.high/,
            /Fix: set memoryTune\.softLimit to at least 2560MiB, or "unlimited"/);
        const softSet = parseDomainXml(`<domain type='qemu'><name>web1</name><memory unit='KiB'>524288</memory><vcpu>1</vcpu>
            <memtune><soft_limit unit='KiB'>2621440</soft_limit></memtune></domain>`);
        refusedAtApply({}, { config: softSet, live: softSet, desired: { memoryKiB: 1024 * 1024 }, growth: GROWS, cgroupV2: true }, /the soft limit the config has \(not managed by these inputs\) 2560MiB .* = 3GiB/);
        checkTuningOnHost(virsh, tuningSettings({ memoryTune: { softLimit: "2560MiB" } }), v2);
        checkTuningOnHost(virsh, tuningSettings({ memoryTune: { softLimit: "512MiB" } }), { ...target, cgroupV2: false });
    });

    it("on cgroup v2 (cpu.weight): refuses shares above 10000, which the config would take and the next start refuse; v1 keeps 2–262144", () => {
        refusedAtApply({ cpuTune: { shares: 20000 } }, { ...target, cgroupV2: true },
            /cpuTune\.shares 20000 on domain 'web1' is outside 1–10000, the range of cpu\.weight on this cgroup v2 host/, /Fix: set shares within 1–10000/);
        checkTuningOnHost(virsh, tuningSettings({ cpuTune: { shares: 10000 } }), { ...target, cgroupV2: true });
        checkTuningOnHost(virsh, tuningSettings({ cpuTune: { shares: 20000 } }), { ...target, cgroupV2: false });
    });

    it("each half's TCG overhead is its own: a running QEMU started with a bigger translation cache than the config now has is checked with it", () => {
        const live = parseDomainXml(`<domain type='qemu'><name>web1</name><memory unit='KiB'>524288</memory><vcpu>1</vcpu>
            <features><tcg><tb-cache unit='MiB'>2048</tb-cache></tcg></features></domain>`);
        // 2560 MiB fits the config (512 MiB + 1 GiB + the default 1 GiB cache), not the running QEMU (512 MiB + 1 GiB + 2 GiB).
        refusedAtApply({ memoryTune: { hardLimit: "2560MiB" } }, { ...target, live },
            /hardLimit 2560MiB .* 512MiB \+ QEMU's overhead 3GiB \(1GiB for QEMU itself \+ 2GiB of TCG translation cache\) = 3584MiB/);
        checkTuningOnHost(virsh, tuningSettings({ memoryTune: { hardLimit: "2560MiB" } }), { ...target, live: undefined });
    });

    it("a maxMemory lowered through a reboot is the config's new ceiling (no memory device): a hard limit fitting it passes; with a device both count", () => {
        const big = parseDomainXml(`<domain type='kvm'><name>web1</name><memory unit='KiB'>8388608</memory><vcpu>1</vcpu></domain>`);
        const lowered: TuningTarget = { config: big, desired: { maxMemoryKiB: 4 * 1024 * 1024, memoryKiB: 4 * 1024 * 1024 }, growth: NO_GROWTH };
        checkTuningOnHost(virsh, tuningSettings({ memoryTune: { hardLimit: "5GiB" } }), lowered);
        const withDevice = parseDomainXml(`<domain type='kvm'><name>web1</name><memory unit='KiB'>8388608</memory><vcpu>1</vcpu>
            <devices><memory model='virtio-mem'><target><size unit='KiB'>4194304</size><block unit='KiB'>2048</block><requested unit='KiB'>0</requested></target></memory></devices></domain>`);
        refusedAtApply({ memoryTune: { hardLimit: "5GiB" } }, { ...lowered, config: withDevice }, /its memory ceiling .* 8GiB \+ QEMU's overhead 1GiB .* = 9GiB/);
    });

    it("refuses limits out of order with the ones the domain has: a soft limit above its hard limit, a swap-hard limit below it", () => {
        refusedAtApply({ memoryTune: { softLimit: "4GiB" } }, target, /softLimit 4GiB on domain 'web1' is above the hard limit 3GiB \(with the limits the config has now\)/);
        refusedAtApply({ memoryTune: { swapHardLimit: "2GiB" } }, target, /swapHardLimit 2GiB .* below the hard limit 3GiB/);
    });
});
