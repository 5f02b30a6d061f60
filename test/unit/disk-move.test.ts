import assert from "node:assert/strict";
import { blockJobProgress, freeBytesOf, moveFacts } from "../../provider/providers/disk-move";

const ran = (stdout: string, exitCode = 0) => ({ ran: true as const, exitCode, stdout, stderr: "" });

describe("disk move: what the host says", () => {
    it("blockjob --raw (as libvirt 9.0 prints it, one field a line): bytes copied and total; nothing when no job runs", () => {
        assert.deepEqual(blockJobProgress(ran(" type=Block Copy\n bandwidth=1\n cur=16777216\n end=67108864\n")), { cur: 16777216, end: 67108864 });
        assert.equal(blockJobProgress(ran("No current block job for vdq\n")), undefined);
        assert.equal(blockJobProgress(ran("", 1)), undefined);
    });

    it("df -P -B1: the Available column of the last line; undefined when df failed", () => {
        const df = "Filesystem     1-blocks  Used Available Capacity Mounted on\npll-t16 4194304 0 4194304 0% /var/tmp/pll-rig/t16-small\n";
        assert.equal(freeBytesOf(ran(df)), 4194304);
        assert.equal(freeBytesOf(ran("", 1)), undefined);
    });
});

describe("disk move: the diff's fact", () => {
    it("a host that cannot be read fails the diff (never a replacement of a disk the preview showed moving)", async () => {
        const olds = { domain: "g", target: "vdb", source: "/images/a.img", connection: { host: "127.0.0.1", port: 1, sshConfig: false, password: "x" } } as never;
        const news = { ...(olds as object), source: "/images/b.img" } as never;
        await assert.rejects(moveFacts(olds, news));
    });
});
