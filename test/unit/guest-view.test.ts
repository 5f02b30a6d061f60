import assert from "node:assert/strict";
import { cpuListCount, guestMemoryKiB, guestVcpusOf, memoryBlocksOf, onlineMemoryBlocks } from "../../provider/guest-view";
import type { StepOutcome } from "../../provider/virsh/step-script";
import { parseDomainXml } from "../../provider/xml/domain-xml";

const ok = (stdout: string): StepOutcome => ({ ran: true, exitCode: 0, stdout, stderr: "" });
const failed = (stderr: string): StepOutcome => ({ ran: true, exitCode: 1, stdout: "", stderr });
const running = (stats: string) => parseDomainXml(`<domain id='3'><name>g</name><memory unit='KiB'>524288</memory><vcpu>2</vcpu>
  <devices><memballoon model='virtio'>${stats}</memballoon></devices></domain>`);

describe("guest-view", () => {
    it("counts Linux CPU lists", () => {
        assert.equal(cpuListCount("0"), 1);
        assert.equal(cpuListCount("0-2"), 3);
        assert.equal(cpuListCount("0-2,5,7-8"), 6);
        assert.equal(cpuListCount(""), 0);
    });

    it("reads virsh guestvcpus: plugged and online apart", () => {
        const answer = ok("vcpus          : 0-2\nonline         : 0\nofflinable     : 1-2\n\n");
        assert.deepEqual(guestVcpusOf(answer), { present: 3, online: 1 });
    });

    it("no agent (refused, not run, or an answer without the fields) is null, never a count", () => {
        assert.equal(guestVcpusOf(failed("error: argument unsupported: QEMU guest agent is not configured")), null);
        assert.equal(guestVcpusOf({ ran: false }), null);
        assert.equal(guestVcpusOf(ok("something else\n")), null);
    });

    it("reads the guest's total from dommemstat's available, null without balloon statistics", () => {
        const stats = ok("actual 524288\nswap_in 0\navailable 411044\nusable 300000\nrss 200000\n");
        assert.equal(guestMemoryKiB(stats, running("<stats period='2'/>")), 411044);
        assert.equal(guestMemoryKiB(ok("actual 524288\nrss 200000\n"), running("<stats period='2'/>")), null);
        // No period: the figure is what the driver said once at boot, not the guest's view now.
        assert.equal(guestMemoryKiB(stats, running("")), null);
        assert.equal(guestMemoryKiB(stats, undefined), null, "shut off");
    });

    it("reads the agent's memory blocks and writes the command that onlines some", () => {
        const blocks = memoryBlocksOf(ok(JSON.stringify({ return: [
            { "can-offline": false, online: true, "phys-index": 0 },
            { "can-offline": true, online: false, "phys-index": 33 },
        ] })));
        assert.deepEqual(blocks, [{ physIndex: 0, online: true }, { physIndex: 33, online: false }]);
        assert.deepEqual(JSON.parse(onlineMemoryBlocks([{ physIndex: 33, online: false }])), {
            execute: "guest-set-memory-blocks",
            arguments: { "mem-blks": [{ "phys-index": 33, online: true, "can-offline": true }] },
        });
        assert.equal(memoryBlocksOf(failed("error: Guest agent is not responding")), null);
        assert.equal(memoryBlocksOf(ok("not json")), null);
    });
});
