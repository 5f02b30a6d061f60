import assert from "node:assert/strict";
import {
    ATTACHED_CDROM_RULES, ATTACHED_DISK_RULES, ATTACHED_INTERFACE_RULES, classifyChanges, ChangeKind, DOMAIN_RESOURCES_RULES,
    needsReplacement, RuleTable, UNKNOWN_VALUE, valueAt, Values,
} from "../../provider/rules";

const connection = { host: "hv1", user: "root" };
const disk = { domain: "vm1", connection, source: "/images/data.img" };
const nic = { domain: "vm1", connection, type: "bridge", source: "br0" };
const cdrom = { domain: "vm1", connection, source: "/iso/a.iso" };
const GiB = 1024 * 1024;
const resources = { domain: "vm1", connection, memory: "1GiB", maxMemory: "4GiB", vcpus: 2, maxVcpus: 4 };
const resourceOuts = { ...resources, maxMemoryKiB: 4 * GiB, currentMemoryKiB: 1 * GiB, maximumVcpus: 4, currentVcpus: 2 };

const kinds = (table: RuleTable, olds: Values, news: Values, running: boolean): Array<[string, ChangeKind]> =>
    classifyChanges(table, olds, news, running).map((c) => [c.path, c.kind]);

describe("rule-table: valueAt", () => {
    it("reads dotted paths and stops at non-objects", () => {
        assert.equal(valueAt({ a: { b: { c: 1 } } }, "a.b.c"), 1);
        assert.equal(valueAt({ a: "x" }, "a.b"), undefined);
        assert.equal(valueAt({ a: null }, "a.b"), undefined);
        assert.equal(valueAt({}, "connection.host"), undefined);
    });
});

describe("rule-table: needsReplacement", () => {
    it("only reboot and replace show as a replacement", () => {
        assert.deepEqual((["live", "config", "reboot", "replace", "none"] as const).map(needsReplacement), [false, false, true, true, false]);
    });
});

describe("rule-table: classifyChanges basics", () => {
    it("identical inputs: no changes in either state", () => {
        for (const running of [true, false]) {
            assert.deepEqual(classifyChanges(ATTACHED_DISK_RULES, disk, disk, running), []);
            assert.deepEqual(classifyChanges(DOMAIN_RESOURCES_RULES, resourceOuts, resources, running), []);
            assert.deepEqual(classifyChanges(ATTACHED_INTERFACE_RULES, nic, nic, running), []);
            assert.deepEqual(classifyChanges(ATTACHED_CDROM_RULES, cdrom, cdrom, running), []);
        }
    });

    it("keys outside the table (outputs, __provider) are ignored", () => {
        const olds = { ...disk, __provider: "old-serialized-provider", attachedLive: true, attachedConfig: true };
        const news = { ...disk, __provider: "new-serialized-provider" };
        assert.deepEqual(classifyChanges(ATTACHED_DISK_RULES, olds, news, true), []);
    });

    it("the running flag picks the column", () => {
        const news = { ...resources, memory: "8GiB" };
        assert.deepEqual(kinds(DOMAIN_RESOURCES_RULES, resourceOuts, news, true), [["memory", "reboot"]]);
        assert.deepEqual(kinds(DOMAIN_RESOURCES_RULES, resourceOuts, news, false), [["memory", "config"]]);
    });

    it("reports old and new values (normalised) and the rule that classified them", () => {
        const [change] = classifyChanges(DOMAIN_RESOURCES_RULES, resourceOuts, { ...resources, memory: "2GiB" }, true);
        assert.equal(change.oldValue, 1 * GiB);
        assert.equal(change.newValue, 2 * GiB);
        assert.equal(change.rule.when, "up or down within the current maximum");
    });

    it("several changes come out in the table's property order", () => {
        const news = { ...resources, vcpus: 3, memory: "2GiB", domain: "vm2" };
        assert.deepEqual(kinds(DOMAIN_RESOURCES_RULES, resourceOuts, news, true), [["domain", "replace"], ["memory", "live"], ["vcpus", "live"]]);
    });
});

describe("rule-table: normalisation of equal values", () => {
    it("memory 512 vs \"512MiB\" (and 4096 vs \"4GiB\") is no change", () => {
        const olds = { ...resourceOuts, memory: 512, maxMemory: 4096 };
        assert.deepEqual(classifyChanges(DOMAIN_RESOURCES_RULES, olds, { ...resources, memory: "512MiB", maxMemory: "4GiB" }, true), []);
        assert.deepEqual(classifyChanges(DOMAIN_RESOURCES_RULES, { ...olds, memory: "512MiB" }, { ...resources, memory: 512, maxMemory: 4096 }, true), []);
        assert.deepEqual(classifyChanges(DOMAIN_RESOURCES_RULES, { ...olds, memory: "0.5GiB" }, { ...resources, memory: "524288KiB", maxMemory: 4096 }, true), []);
    });

    it("mac case is no change", () => {
        assert.deepEqual(classifyChanges(ATTACHED_INTERFACE_RULES, { ...nic, mac: "52:54:00:AB:CD:EF" }, { ...nic, mac: "52:54:00:ab:cd:ef" }, true), []);
    });

    it("connection keys in another order are no change", () => {
        const olds = { ...disk, connection: { user: "root", host: "hv1", sudo: true } };
        const news = { ...disk, connection: { host: "hv1", sudo: true, user: "root" } };
        assert.deepEqual(classifyChanges(ATTACHED_DISK_RULES, olds, news, true), []);
    });

    // These compare an absent value with its documented default. They fail while rule-table.ts's
    // normalized() returns undefined without calling normalize (so `v ?? "virtio"` never runs).
    const defaults: Array<[string, RuleTable, Values, string, unknown]> = [
        ["disk bus", ATTACHED_DISK_RULES, disk, "bus", "virtio"],
        ["disk format", ATTACHED_DISK_RULES, disk, "format", "raw"],
        ["disk readonly", ATTACHED_DISK_RULES, disk, "readonly", false],
        ["interface model", ATTACHED_INTERFACE_RULES, nic, "model", "virtio"],
        ["interface linkState", ATTACHED_INTERFACE_RULES, nic, "linkState", "up"],
        ["resources rebootPolicy", DOMAIN_RESOURCES_RULES, resources, "rebootPolicy", "never"],
    ];
    for (const [name, table, base, path, value] of defaults) {
        it(`${name}: absent vs ${JSON.stringify(value)} is no change, both ways`, () => {
            for (const running of [true, false]) {
                assert.deepEqual(kinds(table, base, { ...base, [path]: value }, running), [], `undefined → ${JSON.stringify(value)}`);
                assert.deepEqual(kinds(table, { ...base, [path]: value }, base, running), [], `${JSON.stringify(value)} → undefined`);
            }
        });
    }

    it("connection.port absent vs 22 and uri absent vs qemu:///system are no change", () => {
        const explicit = { ...disk, connection: { ...connection, port: 22, uri: "qemu:///system" } };
        assert.deepEqual(kinds(ATTACHED_DISK_RULES, disk, explicit, true), []);
        assert.deepEqual(kinds(ATTACHED_DISK_RULES, explicit, disk, true), []);
    });

    it("cdrom source: absent vs null (empty tray either way) is no change", () => {
        const empty = { domain: "vm1", connection };
        assert.deepEqual(kinds(ATTACHED_CDROM_RULES, { ...empty, source: null }, empty, true), []);
        assert.deepEqual(kinds(ATTACHED_CDROM_RULES, empty, { ...empty, source: null }, true), []);
    });

    it("a default differing from the old value is still a change", () => {
        assert.deepEqual(kinds(ATTACHED_DISK_RULES, { ...disk, bus: "scsi" }, disk, true), [["bus", "replace"]]);
        assert.deepEqual(kinds(ATTACHED_INTERFACE_RULES, { ...nic, linkState: "down" }, nic, true), [["linkState", "live"]]);
    });

    it("a value normalize cannot parse compares as itself instead of throwing", () => {
        assert.deepEqual(kinds(DOMAIN_RESOURCES_RULES, { ...resourceOuts, maxMemory: "4096" }, { ...resources, maxMemory: "4096" }, true), []);
        assert.deepEqual(kinds(DOMAIN_RESOURCES_RULES, resourceOuts, { ...resources, maxMemory: "lots" }, true), [["maxMemory", "reboot"]]);
    });
});

describe("rule-table: absentKeepsOld", () => {
    it("disk target and sourceType absent in the new inputs: no change", () => {
        const olds = { ...disk, target: "vdb", sourceType: "file" };
        assert.deepEqual(classifyChanges(ATTACHED_DISK_RULES, olds, disk, true), []);
    });

    it("a new explicit target that differs is still a replace", () => {
        assert.deepEqual(kinds(ATTACHED_DISK_RULES, { ...disk, target: "vdb" }, { ...disk, target: "vdc" }, true), [["target", "replace"]]);
    });

    it("interface mac absent: no change", () => {
        assert.deepEqual(classifyChanges(ATTACHED_INTERFACE_RULES, { ...nic, mac: "52:54:00:12:34:56" }, nic, true), []);
    });

    it("cdrom target and bus absent: no change", () => {
        assert.deepEqual(classifyChanges(ATTACHED_CDROM_RULES, { ...cdrom, target: "sdb", bus: "scsi" }, cdrom, true), []);
    });

    it("a property without absentKeepsOld that disappears is a change (cdrom eject)", () => {
        const empty = { domain: "vm1", connection };
        assert.deepEqual(kinds(ATTACHED_CDROM_RULES, cdrom, empty, true), [["source", "live"]]);
        assert.deepEqual(kinds(ATTACHED_CDROM_RULES, cdrom, empty, false), [["source", "config"]]);
    });
});

describe("rule-table: values unknown during preview", () => {
    it("take the most severe kind of their path", () => {
        const cases: Array<[RuleTable, Values, string, ChangeKind, ChangeKind]> = [
            [DOMAIN_RESOURCES_RULES, resourceOuts, "memory", "reboot", "config"],
            [DOMAIN_RESOURCES_RULES, resourceOuts, "vcpus", "reboot", "config"],
            [DOMAIN_RESOURCES_RULES, resourceOuts, "maxMemory", "reboot", "config"],
            [DOMAIN_RESOURCES_RULES, resourceOuts, "rebootPolicy", "none", "none"],
            [DOMAIN_RESOURCES_RULES, resourceOuts, "domain", "replace", "replace"],
            [ATTACHED_DISK_RULES, disk, "source", "replace", "replace"],
            [ATTACHED_DISK_RULES, disk, "detachTimeout", "none", "none"],
            [ATTACHED_INTERFACE_RULES, nic, "source", "live", "config"],
            [ATTACHED_CDROM_RULES, cdrom, "source", "live", "config"],
        ];
        for (const [table, olds, path, running, shutOff] of cases) {
            const news = { ...olds, [path]: UNKNOWN_VALUE };
            assert.deepEqual(kinds(table, olds, news, true), [[path, running]], `${table.resource}.${path} running`);
            assert.deepEqual(kinds(table, olds, news, false), [[path, shutOff]], `${table.resource}.${path} shut off`);
        }
    });

    it("even when the old value was the same marker", () => {
        const olds = { ...resourceOuts, memory: UNKNOWN_VALUE };
        assert.deepEqual(kinds(DOMAIN_RESOURCES_RULES, olds, { ...resources, memory: UNKNOWN_VALUE }, true), [["memory", "reboot"]]);
    });

    it("an unknown host replaces; an unknown credential is stored only", () => {
        const host = { ...disk, connection: { ...connection, host: UNKNOWN_VALUE } };
        assert.deepEqual(kinds(ATTACHED_DISK_RULES, disk, host, true), [["connection.host", "replace"], ["connection", "none"]]);
        const password = { ...disk, connection: { ...connection, password: UNKNOWN_VALUE } };
        assert.deepEqual(kinds(ATTACHED_DISK_RULES, disk, password, true), [["connection", "none"]]);
    });

    it("keeps the marker as newValue", () => {
        const [change] = classifyChanges(ATTACHED_DISK_RULES, disk, { ...disk, source: UNKNOWN_VALUE }, true);
        assert.equal(change.newValue, UNKNOWN_VALUE);
    });
});

describe("rule-table: removing an optional DomainResources input (stop managing it)", () => {
    // memory/vcpus absent means "unmanaged": converge() then changes nothing on the host. The diff
    // must neither throw nor demand a reboot/replacement. Fails while the `memory` rule's
    // applies() calls parseMemoryKiB(undefined) and the vcpus rule compares Number(undefined).
    for (const path of ["memory", "maxMemory", "vcpus", "maxVcpus"]) {
        it(`dropping ${path} does not throw and needs no replacement`, () => {
            const news: Record<string, unknown> = { ...resources };
            delete news[path];
            for (const running of [true, false]) {
                const changes = classifyChanges(DOMAIN_RESOURCES_RULES, resourceOuts, news, running);
                assert.ok(changes.every((c) => !needsReplacement(c.kind)), JSON.stringify(changes.map((c) => [c.path, c.kind])));
            }
        });
    }
});
