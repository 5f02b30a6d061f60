import assert from "node:assert/strict";
import { cpuListCount, guestMemoryKiB, guestVcpusOf, memoryBlocksOf, onlineMemoryBlocks } from "../../provider/guest-view";
import type { StepOutcome } from "../../provider/virsh/step-script";

const ok = (stdout: string): StepOutcome => ({ ran: true, exitCode: 0, stdout, stderr: "" });
const failed = (stderr: string): StepOutcome => ({ ran: true, exitCode: 1, stdout: "", stderr });

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
        assert.equal(guestMemoryKiB(ok("actual 524288\nswap_in 0\navailable 411044\nusable 300000\nrss 200000\n")), 411044);
        assert.equal(guestMemoryKiB(ok("actual 524288\nrss 200000\n")), null);
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
