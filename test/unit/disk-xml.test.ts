import assert from "node:assert/strict";
import { buildDiskXml, diskSourcePath, DiskValues, readDisk } from "../../provider/xml/disk-xml";
import { children, parseXml, XmlNode } from "../../provider/xml/xml-codec";

/** Builds a disk, parses the XML text back, and reads it as the providers do. */
function roundTrip(values: DiskValues): { xml: string; back: DiskValues } {
    const xml = buildDiskXml(values);
    const disks = children(parseXml(xml), "disk");
    assert.equal(disks.length, 1, xml);
    return { xml, back: readDisk(disks[0]) };
}

describe("disk-xml: buildDiskXml / readDisk round trip", () => {
    it("file disk, raw, virtio", () => {
        const values: DiskValues = { sourceType: "file", device: "disk", driverName: "qemu", format: "raw",
            file: "/var/lib/libvirt/images/data.img", target: "vdb", bus: "virtio" };
        const { xml, back } = roundTrip(values);
        assert.deepEqual(back, values);
        assert.match(xml, /^<disk type="file" device="disk">/);
        assert.match(xml, /<source file="\/var\/lib\/libvirt\/images\/data\.img"\/>/);
        assert.match(xml, /<target dev="vdb" bus="virtio"\/>/);
        assert.ok(!xml.includes("readonly"));
        assert.ok(!xml.includes("serial"));
    });

    it("block disk uses source/@dev", () => {
        const values: DiskValues = { sourceType: "block", device: "disk", driverName: "qemu", format: "raw",
            dev: "/dev/vg0/data", target: "sdb", bus: "scsi" };
        const { xml, back } = roundTrip(values);
        assert.deepEqual(back, values);
        assert.match(xml, /<source dev="\/dev\/vg0\/data"\/>/);
        assert.equal(diskSourcePath(back), "/dev/vg0/data");
    });

    it("qcow2 with cache none and io native", () => {
        const values: DiskValues = { sourceType: "file", device: "disk", driverName: "qemu", format: "qcow2", cache: "none",
            io: "native", file: "/images/a.qcow2", target: "vdc", bus: "virtio" };
        const { xml, back } = roundTrip(values);
        assert.deepEqual(back, values);
        assert.match(xml, /<driver name="qemu" type="qcow2" cache="none" io="native"\/>/);
    });

    it("readonly is an empty <readonly/> element and reads back true", () => {
        const { xml, back } = roundTrip({ sourceType: "file", file: "/a.img", target: "vdb", readonly: true });
        assert.match(xml, /<readonly\/>/);
        assert.equal(back.readonly, true);
    });

    it("readonly false leaves the element out and reads back absent", () => {
        const { xml, back } = roundTrip({ sourceType: "file", file: "/a.img", target: "vdb", readonly: false });
        assert.ok(!xml.includes("readonly"), xml);
        assert.equal(back.readonly, undefined);
    });

    it("a serial made of digits stays a string (leading zeros kept)", () => {
        const { back } = roundTrip({ file: "/a.img", target: "vdb", serial: "000123" });
        assert.equal(back.serial, "000123");
        assert.equal(typeof back.serial, "string");
    });

    it("XML special characters in serial are escaped and come back intact", () => {
        const serial = `<&"'>`;
        const { xml, back } = roundTrip({ sourceType: "file", file: "/a.img", target: "vdb", serial });
        assert.ok(!xml.includes(serial), xml);
        const text = /<serial>([^<]*)<\/serial>/.exec(xml);
        assert.ok(text, `serial element with escaped text expected in ${xml}`);
        assert.ok(!/&(?!(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.test(text[1]), `bare & in ${text[1]}`);
        assert.equal(back.serial, serial);
    });

    it("XML special characters in a source path attribute are escaped and come back intact", () => {
        const file = `/images/a&b "c" <d> 'e'.img`;
        const { xml, back } = roundTrip({ sourceType: "file", file, target: "vdb" });
        const attr = /<source file="([^"]*)"\/>/.exec(xml);
        assert.ok(attr, xml);
        assert.ok(!/[<>]/.test(attr[1]) && !/&(?!(lt|gt|amp|quot|apos|#\d+);)/.test(attr[1]), attr[1]);
        assert.equal(back.file, file);
    });

    it("leaves out undefined and empty values", () => {
        const { xml, back } = roundTrip({ sourceType: "file", file: "/a.img", target: "vdb", cache: undefined, serial: "" });
        assert.ok(!xml.includes("cache"));
        assert.ok(!xml.includes("serial"));
        assert.equal(back.cache, undefined);
        assert.equal(back.serial, undefined);
    });
});

describe("disk-xml: readDisk on libvirt's own XML", () => {
    it("reads what dumpxml prints, ignoring extra elements", () => {
        const xml = `<devices><disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='writeback' discard='unmap'/>
      <source file='/var/lib/libvirt/images/a.qcow2' index='2'/>
      <backingStore/>
      <target dev='vdb' bus='virtio'/>
      <serial>DATA1</serial>
      <alias name='virtio-disk1'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x08' function='0x0'/>
    </disk></devices>`;
        const disk = readDisk(children(parseXml(xml).devices as XmlNode, "disk")[0]);
        assert.deepEqual(disk, { sourceType: "file", device: "disk", driverName: "qemu", format: "qcow2", cache: "writeback",
            file: "/var/lib/libvirt/images/a.qcow2", target: "vdb", bus: "virtio", serial: "DATA1" });
    });
});

describe("disk-xml: diskSourcePath", () => {
    it("prefers file, then dev, else undefined", () => {
        assert.equal(diskSourcePath({ file: "/a.img" }), "/a.img");
        assert.equal(diskSourcePath({ dev: "/dev/sdb" }), "/dev/sdb");
        assert.equal(diskSourcePath({}), undefined);
        assert.equal(diskSourcePath({ file: true }), undefined);
    });
});
