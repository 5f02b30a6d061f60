import assert from "node:assert/strict";
import { parseDomainXml } from "../../provider/xml/domain-xml";

/** `virsh dumpxml` of a running guest on libvirt 9 (trimmed of nothing the parser should rely on). */
const LIBVIRT9_RUNNING = `<domain type='kvm' id='3'>
  <name>web1</name>
  <uuid>5f0a9a8e-3d6b-4c1e-9a53-2b1f0a7e4c11</uuid>
  <metadata>
    <libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0">
      <libosinfo:os id="http://debian.org/debian/12"/>
    </libosinfo:libosinfo>
  </metadata>
  <memory unit='KiB'>4194304</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static' current='1'>4</vcpu>
  <resource>
    <partition>/machine</partition>
  </resource>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <cpu mode='host-passthrough' check='none' migratable='on'/>
  <clock offset='utc'>
    <timer name='rtc' tickpolicy='catchup'/>
  </clock>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web1.qcow2' index='3'/>
      <backingStore/>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x0'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/libvirt/images/debian-12.iso' index='2'/>
      <backingStore/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
      <alias name='ide0-1-0'/>
      <address type='drive' controller='0' bus='1' target='0' unit='0'/>
    </disk>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='none' io='native'/>
      <source dev='/dev/vg0/web1-data' index='1'/>
      <backingStore/>
      <target dev='vdb' bus='virtio'/>
      <serial>0042</serial>
      <alias name='virtio-disk1'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x09' function='0x0'/>
    </disk>
    <controller type='usb' index='0' model='piix3-uhci'>
      <alias name='usb'/>
    </controller>
    <controller type='pci' index='0' model='pci-root'>
      <alias name='pci.0'/>
    </controller>
    <controller type='ide' index='0'>
      <alias name='ide'/>
    </controller>
    <interface type='bridge'>
      <mac address='52:54:00:6b:3c:58'/>
      <source bridge='br0'/>
      <target dev='vnet3'/>
      <model type='virtio'/>
      <link state='up'/>
      <alias name='net0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </interface>
    <serial type='pty'>
      <source path='/dev/pts/2'/>
      <target type='isa-serial' port='0'>
        <model name='isa-serial'/>
      </target>
      <alias name='serial0'/>
    </serial>
    <memballoon model='virtio'>
      <alias name='balloon0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x08' function='0x0'/>
    </memballoon>
  </devices>
  <seclabel type='dynamic' model='apparmor' relabel='yes'>
    <label>libvirt-5f0a9a8e-3d6b-4c1e-9a53-2b1f0a7e4c11</label>
  </seclabel>
</domain>
`;

describe("domain-xml: parseDomainXml on a libvirt 9 dumpxml", () => {
    const parsed = parseDomainXml(LIBVIRT9_RUNNING);

    it("reads name, id and machine", () => {
        assert.equal(parsed.name, "web1");
        assert.equal(parsed.id, "3");
        assert.equal(parsed.machine, "pc-i440fx-7.2");
    });

    it("reads memory and currentMemory in KiB", () => {
        assert.equal(parsed.memoryKiB, 4194304);
        assert.equal(parsed.currentMemoryKiB, 1048576);
    });

    it("reads vcpu maximum and current", () => {
        assert.equal(parsed.maxVcpus, 4);
        assert.equal(parsed.currentVcpus, 1);
    });

    it("reads every disk in order, the cdrom included", () => {
        assert.deepEqual(parsed.disks, [
            { sourceType: "file", device: "disk", driverName: "qemu", format: "qcow2", file: "/var/lib/libvirt/images/web1.qcow2",
                target: "vda", bus: "virtio" },
            { sourceType: "file", device: "cdrom", driverName: "qemu", format: "raw", file: "/var/lib/libvirt/images/debian-12.iso",
                target: "hdc", bus: "ide", readonly: true },
            { sourceType: "block", device: "disk", driverName: "qemu", format: "raw", cache: "none", io: "native",
                dev: "/dev/vg0/web1-data", target: "vdb", bus: "virtio", serial: "0042" },
        ]);
    });

    it("does not take the <serial type='pty'> device for a disk serial or an interface", () => {
        assert.equal(parsed.disks[0].serial, undefined);
        assert.equal(parsed.interfaces.length, 1);
    });

    it("reads the bridge interface", () => {
        assert.deepEqual(parsed.interfaces, [
            { type: "bridge", bridge: "br0", mac: "52:54:00:6b:3c:58", model: "virtio", linkState: "up" },
        ]);
    });
});

describe("domain-xml: parseDomainXml edge cases", () => {
    const minimal = (memory: string, extra = ""): string =>
        `<domain type='kvm'><name>vm</name>${memory}<vcpu placement='static'>2</vcpu>${extra}<devices/></domain>`;

    it("a shut-off domain has no id", () => {
        assert.equal(parseDomainXml(minimal("<memory unit='KiB'>1048576</memory>")).id, undefined);
    });

    it("memory in MiB and currentMemory in GiB", () => {
        const d = parseDomainXml(minimal("<memory unit='MiB'>4096</memory><currentMemory unit='GiB'>1</currentMemory>"));
        assert.equal(d.memoryKiB, 4 * 1024 * 1024);
        assert.equal(d.currentMemoryKiB, 1024 * 1024);
    });

    it("memory in GiB, bytes, and with no unit (KiB)", () => {
        assert.equal(parseDomainXml(minimal("<memory unit='GiB'>2</memory>")).memoryKiB, 2 * 1024 * 1024);
        assert.equal(parseDomainXml(minimal("<memory unit='bytes'>1073741824</memory>")).memoryKiB, 1024 * 1024);
        assert.equal(parseDomainXml(minimal("<memory unit='b'>1073741824</memory>")).memoryKiB, 1024 * 1024);
        assert.equal(parseDomainXml(minimal("<memory>524288</memory>")).memoryKiB, 524288);
    });

    it("currentMemory defaults to memory, current vcpus to the maximum", () => {
        const d = parseDomainXml(minimal("<memory unit='KiB'>1048576</memory>"));
        assert.equal(d.currentMemoryKiB, 1048576);
        assert.equal(d.maxVcpus, 2);
        assert.equal(d.currentVcpus, 2);
    });

    it("no devices: empty lists; a single disk or interface is still a list", () => {
        const none = parseDomainXml(minimal("<memory>524288</memory>"));
        assert.deepEqual(none.disks, []);
        assert.deepEqual(none.interfaces, []);
        const one = parseDomainXml(`<domain><name>vm</name><memory>524288</memory><vcpu>1</vcpu><devices>
            <disk type='file' device='disk'><source file='/a.img'/><target dev='vda' bus='virtio'/></disk>
            <interface type='network'><source network='default'/></interface></devices></domain>`);
        assert.deepEqual(one.disks, [{ sourceType: "file", device: "disk", file: "/a.img", target: "vda", bus: "virtio" }]);
        assert.deepEqual(one.interfaces, [{ type: "network", network: "default" }]);
        assert.equal(one.machine, undefined);
    });

    it("refuses text without a <domain> element", () => {
        assert.throws(() => parseDomainXml("<network><name>default</name></network>"), /no <domain> element/);
        assert.throws(() => parseDomainXml(""), /no <domain> element/);
    });
});
