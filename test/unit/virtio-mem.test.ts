import assert from "node:assert/strict";
import { pendingDifferences } from "../../provider/domain-resources-plan";
import { balloonView, splitMemory, virtioMemOf } from "../../provider/virtio-mem";
import { parseDomainXml } from "../../provider/xml/domain-xml";
import { virtioMemObstacle, withVirtioMemDevice } from "../../provider/xml/virtio-mem-xml";

const PLAIN = "<domain type='qemu'><name>g</name><memory unit='KiB'>524288</memory><currentMemory unit='KiB'>262144</currentMemory>" +
    "<vcpu placement='static' current='1'>4</vcpu><devices><memballoon model='virtio'/></devices></domain>";

describe("virtio-mem", () => {
    it("adds maxMemory, a NUMA cell with the boot memory and the device to a config that has none", () => {
        assert.equal(virtioMemObstacle(PLAIN), undefined);
        const text = withVirtioMemDevice(PLAIN, { bootKiB: 524288, sizeKiB: 1048576, blockKiB: 2048, requestedKiB: 262144, maxVcpus: 4 });
        assert.match(text, /<maxMemory slots='1' unit='KiB'>1572864<\/maxMemory>/);
        assert.match(text, /<cell id='0' cpus='0-3' memory='524288' unit='KiB'\/>/);
        const xml = parseDomainXml(text);
        assert.deepEqual(virtioMemOf(xml), { model: "virtio-mem", sizeKiB: 1048576, requestedKiB: 262144, currentKiB: undefined, blockKiB: 2048 });
        assert.match(virtioMemObstacle(text) ?? "", /NUMA/);
    });

    it("puts the cell inside the <cpu> libvirt already wrote (self-closing or not)", () => {
        const args = { bootKiB: 524288, sizeKiB: 1048576, blockKiB: 2048, requestedKiB: 0, maxVcpus: 2 };
        const open = withVirtioMemDevice(PLAIN.replace("<devices>", "<cpu mode='custom' match='exact'><model fallback='forbid'>qemu64</model></cpu><devices>"), args);
        assert.match(open, /<cpu mode='custom' match='exact'><model fallback='forbid'>qemu64<\/model><numa><cell id='0' cpus='0-1' memory='524288' unit='KiB'\/><\/numa><\/cpu>/);
        assert.equal((open.match(/<cpu\b/g) ?? []).length, 1);
        const closed = withVirtioMemDevice(PLAIN.replace("<devices>", "<cpu mode='host-model'/><devices>"), args);
        assert.match(closed, /<cpu mode='host-model'><numa><cell id='0' cpus='0-1'/);
    });

    it("changes only what it adds: a multi-line description, a console password and the layout stay byte for byte", () => {
        const config = "<domain type='qemu'>\n  <name>g</name>\n  <description>first line\n  second, indented\n\nlast &lt;cpu/&gt;</description>\n" +
            "  <metadata>\n    <app:x xmlns:app='urn:x'><cpu mode='not-this-one'/></app:x>\n  </metadata>\n" +
            "  <memory unit='KiB'>524288</memory>\n  <cpu mode='custom' match='exact' check='none'>\n    <model fallback='forbid'>qemu64</model>\n  </cpu>\n" +
            "  <devices>\n    <graphics type='vnc' port='-1' autoport='yes' passwd='s3cret-pw'/>\n  </devices>\n</domain>\n";
        const add = { bootKiB: 524288, sizeKiB: 1048576, blockKiB: 2048, requestedKiB: 0, maxVcpus: 1 };
        const text = withVirtioMemDevice(config, add);
        const added = [
            "<memory model='virtio-mem'><target><size unit='KiB'>1048576</size><node>0</node><block unit='KiB'>2048</block><requested unit='KiB'>0</requested></target></memory>",
            "<numa><cell id='0' cpus='0' memory='524288' unit='KiB'/></numa>",
            "<maxMemory slots='1' unit='KiB'>1572864</maxMemory>",
        ];
        assert.equal(added.reduce((t, a) => t.replace(a, ""), text), config);
        assert.match(text, /<\/model>\n  <numa>.*<\/numa><\/cpu>/);
        assert.ok(text.includes("<cpu mode='not-this-one'/>"), "the user's own metadata is not the domain's <cpu>");
    });

    it("splits the guest's total: the balloon up to the boot maximum, whole blocks from the device", () => {
        // libvirt's <memory> counts the device: 512 MiB boot + 1 GiB device.
        const xml = parseDomainXml(PLAIN.replace("524288</memory>", "1572864</memory>").replace("</devices>",
            "<memory model='virtio-mem'><target><size unit='KiB'>1048576</size><node>0</node><block unit='KiB'>2048</block><requested unit='KiB'>0</requested></target></memory></devices>"));
        assert.deepEqual(splitMemory(xml, 256 * 1024), { balloonKiB: 262144, requestedKiB: 0 });
        assert.deepEqual(splitMemory(xml, 1280 * 1024), { balloonKiB: 524288, requestedKiB: 786432 });
        assert.match(String(splitMemory(xml, 2048 * 1024)), /above the ceiling 1536MiB/);
        assert.match(String(splitMemory(xml, 513 * 1024)), /nearest above: 514MiB/);
        assert.equal(balloonView(xml).memoryKiB, 524288);
    });

    it("a device in the config and not in the running guest is a pending change", () => {
        // As libvirt keeps it after the define: <memory> counts the device.
        const config = parseDomainXml(withVirtioMemDevice(PLAIN, { bootKiB: 524288, sizeKiB: 1048576, blockKiB: 2048, requestedKiB: 0, maxVcpus: 4 })
            .replace("524288</memory>", "1572864</memory>"));
        const live = parseDomainXml(PLAIN.replace("<domain type='qemu'>", "<domain type='qemu' id='5'>"));
        assert.deepEqual(pendingDifferences(balloonView(config), balloonView(live)), ["hotplugMemory: none now, 1GiB after reboot"]);
    });
});
