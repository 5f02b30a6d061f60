import assert from "node:assert/strict";
import { blkdeviotuneFlags, ioTuneOfDisk, ioTuneProblem, normalizeIoTune, parseBlkdeviotune, sameIoTune } from "../../provider/disk-iotune";
import { ATTACHED_DISK_RULES, classifyChanges } from "../../provider/rules";
import { buildDiskXml } from "../../provider/xml/disk-xml";
import { parseDomainXml } from "../../provider/xml/domain-xml";

describe("disk I/O limits (iotune)", () => {
    it("absent, {} and all zeros are the same: no limit; the diff sees no change between them", () => {
        for (const v of [undefined, {}, { totalBytesSec: 0, readIopsSec: 0 }]) assert.equal(normalizeIoTune(v), undefined);
        assert.ok(sameIoTune(undefined, { totalIopsSec: 0 }));
        const changes = classifyChanges(ATTACHED_DISK_RULES, { iotune: { totalBytesSec: 0 } }, {}, true);
        assert.deepEqual(changes, []);
    });

    it("one blkdeviotune command gives every limit, 0 for the unset ones", () => {
        assert.deepEqual(blkdeviotuneFlags({ readIopsSec: 100 }), ["--total-bytes-sec=0", "--read-bytes-sec=0", "--write-bytes-sec=0",
            "--total-iops-sec=0", "--read-iops-sec=100", "--write-iops-sec=0"]);
        assert.deepEqual(blkdeviotuneFlags(undefined).every((f) => f.endsWith("=0")), true);
    });

    it("the XML we attach carries <iotune>, and reading it back gives the same limits", () => {
        const xml = buildDiskXml({ sourceType: "file", device: "disk", file: "/a.raw", target: "vdb", bus: "virtio", total_bytes_sec: "1000", write_iops_sec: "7" });
        assert.match(xml, /<iotune><total_bytes_sec>1000<\/total_bytes_sec><write_iops_sec>7<\/write_iops_sec><\/iotune>/);
        const domain = parseDomainXml(`<domain><name>g</name><memory>1024</memory><vcpu>1</vcpu><devices>${xml}</devices></domain>`);
        assert.deepEqual(ioTuneOfDisk(domain.disks[0]), { totalBytesSec: 1000, writeIopsSec: 7 });
    });

    it("reads virsh blkdeviotune's answer", () => {
        const out = "total_bytes_sec: 1000000\nread_bytes_sec : 0\nwrite_bytes_sec: 0\ntotal_iops_sec : 0\nread_iops_sec  : 50\nwrite_iops_sec : 0\n" +
            "total_bytes_sec_max: 9\ngroup_name     : /machine/peripheral/virtio-disk1/virtio-backend\n";
        assert.deepEqual(parseBlkdeviotune(out), { totalBytesSec: 1000000, readIopsSec: 50 });
    });

    it("check: negatives, fractions, unknown fields and a total with a read/write limit of the same kind are refused", () => {
        assert.match(ioTuneProblem({ totalBytesSec: -1 }) ?? "", /totalBytesSec must be a whole number ≥ 0 \(got -1\)/);
        assert.match(ioTuneProblem({ readIopsSec: 1.5 }) ?? "", /readIopsSec must be a whole number/);
        assert.match(ioTuneProblem({ totalBytes: 5 }) ?? "", /unknown field totalBytes; use totalBytesSec/);
        assert.match(ioTuneProblem({ totalBytesSec: 5, readBytesSec: 1 }) ?? "", /totalBytesSec and readBytesSec cannot both be set .* keep either totalBytesSec or readBytesSec/);
        assert.match(ioTuneProblem({ totalIopsSec: 5, writeIopsSec: 1 }) ?? "", /totalIopsSec and writeIopsSec cannot both be set/);
        assert.equal(ioTuneProblem({ totalBytesSec: 5, readIopsSec: 1, writeIopsSec: 2 }), undefined);
        assert.equal(ioTuneProblem({ totalBytesSec: 0, readBytesSec: 1 }), undefined);
        assert.match(ioTuneProblem(5) ?? "", /must be an object/);
    });
});
