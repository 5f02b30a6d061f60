import assert from "node:assert/strict";
import { buildInterfaceXml, InterfaceValues, readInterface } from "../../provider/xml/interface-xml";
import { children, parseXml, XmlNode } from "../../provider/xml/xml-codec";

function roundTrip(values: InterfaceValues): { xml: string; back: InterfaceValues } {
    const xml = buildInterfaceXml(values);
    const nics = children(parseXml(xml), "interface");
    assert.equal(nics.length, 1, xml);
    return { xml, back: readInterface(nics[0]) };
}

describe("interface-xml: buildInterfaceXml / readInterface round trip", () => {
    it("bridge interface with mac, model and link", () => {
        const values: InterfaceValues = { type: "bridge", bridge: "br0", mac: "52:54:00:ab:cd:01", model: "virtio", linkState: "down" };
        const { xml, back } = roundTrip(values);
        assert.deepEqual(back, values);
        assert.equal(xml,
            `<interface type="bridge"><source bridge="br0"/><mac address="52:54:00:ab:cd:01"/><model type="virtio"/><link state="down"/></interface>`);
    });

    it("network interface", () => {
        const values: InterfaceValues = { type: "network", network: "default", model: "e1000" };
        const { xml, back } = roundTrip(values);
        assert.deepEqual(back, values);
        assert.match(xml, /<source network="default"\/>/);
        assert.ok(!xml.includes("mac"));
        assert.ok(!xml.includes("link"));
    });

    it("a MAC of digits stays a string as written", () => {
        const { back } = roundTrip({ type: "bridge", bridge: "br0", mac: "52:54:00:00:00:01" });
        assert.equal(back.mac, "52:54:00:00:00:01");
        assert.equal(typeof back.mac, "string");
    });

    it("escapes special characters in a source name", () => {
        const { xml, back } = roundTrip({ type: "network", network: `n&"<x>` });
        assert.ok(!xml.includes(`n&"<x>`), xml);
        assert.equal(back.network, `n&"<x>`);
    });
});

describe("interface-xml: readInterface on dumpxml output", () => {
    it("reads type, source, mac, model and link, ignoring target/alias/address", () => {
        const xml = `<devices><interface type='bridge'>
      <mac address='52:54:00:6b:3c:58'/>
      <source bridge='br0'/>
      <target dev='vnet3'/>
      <model type='virtio'/>
      <link state='up'/>
      <alias name='net0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </interface></devices>`;
        const nic = readInterface(children(parseXml(xml).devices as XmlNode, "interface")[0]);
        assert.deepEqual(nic, { type: "bridge", bridge: "br0", mac: "52:54:00:6b:3c:58", model: "virtio", linkState: "up" });
    });
});
