import assert from "node:assert/strict";
import type { DomainResourcesInputs } from "../../provider/contract";
import { canonicalCpuList, formatCpuList, parseCpuList } from "../../provider/cpu-list";
import { planTuning, refreshedTuning, tuningMismatches, tuningOf, tuningSettings } from "../../provider/domain-tuning";
import { VirshError } from "../../provider/errors";
import { cpuMapOf } from "../../provider/host-checks";
import { tuningStepFailure } from "../../provider/providers/domain-resources";
import { probeLine } from "../../provider/virsh/probes";
import { hintFor } from "../../provider/virsh/stderr-hints";
import { Virsh } from "../../provider/virsh/virsh";
import { DomainXml, parseDomainXml } from "../../provider/xml/domain-xml";

/** A domain's XML with `tuning` spliced in after <vcpu> (as libvirt places <cputune> and its siblings). */
function domainXml(tuning = "", { type = "qemu", vcpu = "<vcpu placement='static' current='1'>4</vcpu>" } = {}): DomainXml {
    return parseDomainXml(`<domain type='${type}'>
  <name>g</name>
  <memory unit='KiB'>524288</memory>
  <currentMemory unit='KiB'>262144</currentMemory>
  ${vcpu}
  ${tuning}
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices></devices>
</domain>`);
}

const TUNED = `<cputune>
    <shares>512</shares>
    <period>100000</period>
    <quota>50000</quota>
    <vcpupin vcpu='0' cpuset='1'/>
    <vcpupin vcpu='2' cpuset='0,1'/>
    <emulatorpin cpuset='0'/>
    <emulator_period>100000</emulator_period>
    <emulator_quota>-1</emulator_quota>
  </cputune>
  <memtune>
    <hard_limit unit='KiB'>3145728</hard_limit>
    <soft_limit unit='KiB'>1048576</soft_limit>
  </memtune>
  <blkiotune>
    <weight>500</weight>
  </blkiotune>`;

const HOST = [0, 1];
type Tuning = Pick<DomainResourcesInputs, "cpuTune" | "memoryTune" | "blkioWeight">;

describe("cpu lists", () => {
    it("parse ranges and lists, and print the shortest canonical form", () => {
        assert.deepEqual(parseCpuList("0-2,5, 7-8"), [0, 1, 2, 5, 7, 8]);
        assert.equal(formatCpuList([5, 0, 1, 2, 8, 7]), "0-2,5,7-8");
        assert.equal(canonicalCpuList("0,1"), "0-1");
        assert.equal(canonicalCpuList("3"), "3");
    });

    it("refuse what is no CPU list, saying how one is written", () => {
        for (const bad of ["", "a", "1-", "^2", "0-3,", "2-1"]) assert.throws(() => parseCpuList(bad), /CPU list|backwards/, bad);
    });
});

describe("cpu lists beyond libvirt's CPU maps", () => {
    it("refuse a CPU number of 16384 or more at once, however wide the range (no walk of 2^53 numbers)", () => {
        for (const text of ["9007199254740992", "0-20000000", "16384", "0-9007199254740993"]) {
            assert.throws(() => parseCpuList(text), /beyond libvirt's CPU numbers 0–16383/, text);
        }
        assert.equal(parseCpuList("0-16383").length, 16384);
        assert.throws(() => parseCpuList("0\n1"), /is not a CPU list/);
        assert.throws(() => parseCpuList("0-1\n"), /is not a CPU list/);
        assert.deepEqual(parseCpuList(" 0 - 1 ,\t3"), [0, 1, 3]);
    });
});

describe("the host's online CPUs", () => {
    it("are libvirt's (virsh nodecpumap --pretty, of the host the URI names, under virsh's own sudo), never the SSH host's sysfs", () => {
        const virsh = new Virsh({ label: "hv1" } as never, "qemu+ssh://hv2/system", "g", true, 30);
        const line = probeLine({ kind: "hostCpus" }, virsh);
        assert.match(line, /'virsh' .*'nodecpumap' '--pretty'/);
        assert.doesNotMatch(line, /cat|\/sys\//);
    });

    it("the cgroup file system's type is read without sudo (it needs no privilege; under sudo: true only virsh and the disk commands run as root)", () => {
        const virsh = new Virsh({ label: "hv1" } as never, "qemu:///system", "g", true, 30);
        assert.doesNotMatch(probeLine({ kind: "cgroupFs" }, virsh), /sudo/);
        assert.match(probeLine({ kind: "cgroupFs" }, virsh), /'stat' '-fc' '%T' '\/sys\/fs\/cgroup'/);
        assert.match(probeLine({ kind: "path", path: "/x" }, virsh), /'sudo' '-n' 'stat'/);
    });

    it("are read from the CPU map line", () => {
        assert.deepEqual(cpuMapOf("CPUs present:   8\nCPUs online:    6\nCPU map:        0-3,6-7\n\n"), [0, 1, 2, 3, 6, 7]);
        assert.equal(cpuMapOf("CPU map:        yyyy\n"), undefined);
        assert.equal(cpuMapOf(""), undefined);
    });
});

describe("tuning failures' hints", () => {
    it("a cgroup controller libvirt runs the guest without, in each of libvirt's wordings, points at cgroup_controllers", () => {
        for (const stderr of ["error: Requested operation is not valid: blkio cgroup isn't mounted", "error: Requested operation is not valid: cgroup CPU controller is not mounted",
            "error: Requested operation is not valid: cgroup memory controller is not mounted"]) {
            assert.match(hintFor(stderr, "none"), /cgroup_controllers in \/etc\/libvirt\/qemu\.conf/, stderr);
        }
    });
});

describe("domain tuning: the XML read", () => {
    it("reads <cputune>, <memtune> and <blkiotune> by libvirt's names, and the domain's type", () => {
        const xml = domainXml(TUNED);
        assert.equal(xml.type, "qemu");
        assert.deepEqual(xml.tuning.cputune, { shares: 512, period: 100000, quota: 50000, emulator_period: 100000, emulator_quota: -1 });
        assert.deepEqual(xml.tuning.vcpupins, { 0: "1", 2: "0,1" });
        assert.equal(xml.tuning.emulatorpin, "0");
        assert.deepEqual(xml.tuning.memtuneKiB, { hard_limit: 3145728, soft_limit: 1048576 });
        assert.equal(xml.tuning.blkioWeight, 500);
    });

    it("reports them in the inputs' form, only what is set", () => {
        assert.deepEqual(tuningOf(domainXml(TUNED)), {
            cpuTune: { shares: 512, period: 100000, quota: 50000, emulatorPeriod: 100000, emulatorQuota: -1, vcpuPins: { 0: "1", 2: "0,1" }, emulatorPin: "0" },
            memoryTune: { hardLimit: "3GiB", softLimit: "1GiB" },
            blkioWeight: 500,
        });
        assert.deepEqual(tuningOf(domainXml()), { cpuTune: {}, memoryTune: {} });
    });

    it("reads a tb-cache size for the TCG overhead", () => {
        const xml = parseDomainXml("<domain type='qemu'><name>g</name><memory unit='KiB'>1</memory><vcpu>1</vcpu><features><tcg><tb-cache unit='MiB'>2048</tb-cache></tcg></features></domain>");
        assert.equal(xml.tbCacheKiB, 2 * 1024 * 1024);
    });
});

describe("domain tuning: the plan", () => {
    const split = (inputs: Tuning, config: DomainXml, live?: DomainXml) => planTuning("g", tuningSettings(inputs), config, live, HOST);
    const plan = (inputs: Tuning, config: DomainXml, live?: DomainXml) => {
        const { beforeMemory, afterMemory } = split(inputs, config, live);
        return [...beforeMemory, ...afterMemory];
    };

    it("a running domain: one call per command for both halves; the scheduler values of a half in one schedinfo", () => {
        assert.deepEqual(plan({ cpuTune: { shares: 256, quota: 20000 }, blkioWeight: 300 }, domainXml(TUNED), domainXml(TUNED)), [
            ["schedinfo", "--domain=g", "--set=cpu_shares=256", "--set=vcpu_quota=20000", "--live", "--config"],
            ["blkiotune", "--domain=g", "--weight=300", "--live", "--config"],
        ]);
    });

    it("shut off (or through a reboot): the config alone", () => {
        assert.deepEqual(plan({ cpuTune: { vcpuPins: { 1: "0" } } }, domainXml(TUNED)), [["vcpupin", "--domain=g", "--vcpu=1", "--cpulist=0", "--config"]]);
    });

    it("a value changed by hand on the running domain only: that half alone is put back", () => {
        const live = domainXml(TUNED.replace("<vcpupin vcpu='0' cpuset='1'/>", "<vcpupin vcpu='0' cpuset='0'/>").replace("<hard_limit unit='KiB'>3145728", "<hard_limit unit='KiB'>3000000"));
        assert.deepEqual(plan({ cpuTune: { vcpuPins: { 0: "1" } }, memoryTune: { hardLimit: "3GiB", softLimit: "1GiB" } }, domainXml(TUNED), live), [
            ["memtune", "--domain=g", "--hard-limit=3145728", "--live"],
            ["vcpupin", "--domain=g", "--vcpu=0", "--cpulist=1", "--live"],
        ]);
    });

    it("nothing when both halves hold the values, whatever the spelling: 0,1 is 0-1, 3072MiB is 3GiB, an absent quota is -1, an absent limit unlimited", () => {
        const inputs: Tuning = {
            cpuTune: { shares: 512, quota: 50000, emulatorQuota: -1, vcpuPins: { 0: "1", 2: "0-1" }, emulatorPin: "0" },
            memoryTune: { hardLimit: 3072, softLimit: "1GiB", swapHardLimit: "unlimited" }, blkioWeight: 500,
        };
        assert.deepEqual(plan(inputs, domainXml(TUNED), domainXml(TUNED)), []);
        assert.deepEqual(plan({ cpuTune: { quota: -1 }, memoryTune: { hardLimit: "unlimited" } }, domainXml(), domainXml()), []);
    });

    it("an unpinned vCPU runs on every online host CPU (or the domain's <vcpu cpuset>): pinning it there is no change", () => {
        assert.deepEqual(plan({ cpuTune: { vcpuPins: { 1: "0-1" }, emulatorPin: "0,1" } }, domainXml(), domainXml()), []);
        const cpuset = domainXml("", { vcpu: "<vcpu placement='static' cpuset='1'>2</vcpu>" });
        assert.deepEqual(plan({ cpuTune: { vcpuPins: { 1: "1" } } }, cpuset, cpuset), []);
        assert.deepEqual(plan({ cpuTune: { vcpuPins: { 1: "0" } } }, cpuset, cpuset), [["vcpupin", "--domain=g", "--vcpu=1", "--cpulist=0", "--live", "--config"]]);
    });

    it("unlimited is -1 to virsh memtune, and the limits of a half that differ go in one call (libvirt orders hard and swap-hard)", () => {
        const swapped = domainXml(TUNED.replace("</memtune>", "<swap_hard_limit unit='KiB'>4194304</swap_hard_limit></memtune>"));
        assert.deepEqual(plan({ memoryTune: { hardLimit: "unlimited", softLimit: "1GiB", swapHardLimit: "unlimited" } }, swapped, undefined),
            [["memtune", "--domain=g", "--hard-limit=-1", "--swap-hard-limit=-1", "--config"]]);
    });

    it("one memtune call for every limit that differs in either half, with the flags of each such half (never a hard limit raised past the old swap-hard one between two calls)", () => {
        const limits = (swap: number) => domainXml(`<memtune><hard_limit unit='KiB'>3145728</hard_limit><swap_hard_limit unit='KiB'>${swap}</swap_hard_limit></memtune>`);
        // The hard limit differs in both halves, the swap-hard limit in the running domain's alone.
        assert.deepEqual(plan({ memoryTune: { hardLimit: "5GiB", swapHardLimit: "6GiB" } }, limits(6291456), limits(4194304)),
            [["memtune", "--domain=g", "--hard-limit=5242880", "--swap-hard-limit=6291456", "--live", "--config"]]);
    });

    it("a raised hard limit runs before the memory changes, a lowered one (and the rest) after them", () => {
        const tuned = domainXml(TUNED);
        assert.deepEqual(split({ memoryTune: { hardLimit: "4GiB" }, blkioWeight: 300 }, tuned, tuned), {
            beforeMemory: [["memtune", "--domain=g", "--hard-limit=4194304", "--live", "--config"]],
            afterMemory: [["blkiotune", "--domain=g", "--weight=300", "--live", "--config"]],
        });
        assert.deepEqual(split({ memoryTune: { hardLimit: "unlimited" } }, tuned, undefined).beforeMemory, [["memtune", "--domain=g", "--hard-limit=-1", "--config"]]);
        assert.deepEqual(split({ memoryTune: { hardLimit: "2560MiB" } }, tuned, tuned), {
            beforeMemory: [], afterMemory: [["memtune", "--domain=g", "--hard-limit=2621440", "--live", "--config"]],
        });
    });
});

describe("domain tuning: verify and refresh", () => {
    it("verify names each half and value that disagrees", () => {
        const settings = tuningSettings({ cpuTune: { shares: 256 }, blkioWeight: 500 });
        assert.deepEqual(tuningMismatches(settings, domainXml(TUNED), domainXml()), [
            "config cpuTune.shares is 512, expected 256",
            "live cpuTune.shares is not set, expected 256",
            "live blkioWeight is not set, expected 500",
        ]);
        assert.deepEqual(tuningMismatches(tuningSettings({ blkioWeight: 500 }), domainXml(TUNED), domainXml(TUNED)), []);
    });

    it("a refresh reports the running domain's value where it was changed by hand, else the config's; only what is managed", () => {
        const olds: Tuning = { cpuTune: { vcpuPins: { 0: "1" }, quota: 50000 }, memoryTune: { hardLimit: "3GiB" } };
        const live = domainXml(TUNED.replace("cpuset='1'/>", "cpuset='0'/>").replace("3145728", "4194304"));
        assert.deepEqual(refreshedTuning(olds, domainXml(TUNED), live, HOST), { cpuTune: { quota: 50000, vcpuPins: { 0: "0" } }, memoryTune: { hardLimit: "4GiB" }, blkioWeight: undefined });
        assert.deepEqual(refreshedTuning(olds, domainXml(TUNED), domainXml(TUNED), HOST), { cpuTune: { quota: 50000, vcpuPins: { 0: "1" } }, memoryTune: { hardLimit: "3GiB" }, blkioWeight: undefined });
    });

    it("a managed value gone from both halves reports unset (never the stored input), so the diff shows it", () => {
        assert.deepEqual(refreshedTuning({ cpuTune: { shares: 512 }, blkioWeight: 500 }, domainXml(), undefined), { cpuTune: {}, memoryTune: undefined, blkioWeight: undefined });
        assert.deepEqual(refreshedTuning({ memoryTune: { hardLimit: "3GiB" } }, domainXml(), undefined), { cpuTune: undefined, memoryTune: { hardLimit: "unlimited" }, blkioWeight: undefined });
    });
});

describe("domain tuning: a failed call", () => {
    it("names the failed command and lists the calls that landed before it (never a compare), and that none after it ran", () => {
        const steps = [{ args: ["dumpxml", "--inactive"], outputSha256: "ab" }, { args: ["define", "--file=/dev/stdin"] },
            { args: ["memtune", "--domain=g", "--hard-limit=4194304", "--live", "--config"] }, { args: ["setmem", "--domain=g", "--size=1G", "--live", "--config"] },
            { args: ["schedinfo", "--domain=g", "--set=cpu_shares=20000", "--live", "--config"] }, { args: ["setvcpus", "--guest"] }];
        const ok = { ran: true as const, exitCode: 0, stdout: "", stderr: "" };
        const outcomes = [ok, ok, ok, ok, { ...ok, exitCode: 1, stderr: "error: invalid" }, { ran: false as const }];
        const failure = new VirshError("virsh schedinfo failed (exit 1)", { host: "hv1", domain: "g" }, "see libvirt's error", 1);
        const error = tuningStepFailure(failure, tuningSettings({ cpuTune: { shares: 20000 }, memoryTune: { hardLimit: "4GiB" } }), steps, outcomes, 4);
        assert.match(error.summary, /^virsh schedinfo failed \(exit 1\); the tuning call schedinfo --live --config \(of cpuTune\.shares, memoryTune\.hardLimit\) failed, /);
        assert.match(error.summary, /the calls before it landed \(define, memtune --live --config, setmem --live --config\) and none after it ran$/);
        assert.match(tuningStepFailure(failure, [], steps.slice(2), outcomes.slice(2).map((o, i) => (i === 0 ? { ...ok, exitCode: 1 } : o)), 0).summary, /no change ran before it and none after it ran/);
    });
});
