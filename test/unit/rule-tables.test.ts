import assert from "node:assert/strict";
import {
    ATTACHED_CDROM_RULES, ATTACHED_DISK_RULES, ATTACHED_INTERFACE_RULES, ChangeRule, classifyChanges, DOMAIN_RESOURCES_RULES,
    renderRuleTable, RuleTable, valueAt,
} from "../../provider/rules";

const GiB = 1024 * 1024;

/** One change of one property: the old and new value at `path`, plus outputs the olds carry. */
interface Example {
    from: unknown;
    to: unknown;
    oldsExtra?: Record<string, unknown>;
    /** Other new inputs (and diff facts) the row needs, such as the move's new source: only the change at the row's path is checked. */
    newsExtra?: Record<string, unknown>;
}

/** Placement rows every table shares. */
const PLACEMENT_EXAMPLES: Record<string, Example[][]> = {
    "domain": [[{ from: "vm1", to: "vm2" }]],
    "connection.host": [[{ from: "hv1", to: "hv2" }, { from: "hv1", to: "10.0.0.9" }]],
    "connection.port": [[{ from: 22, to: 2222 }, { from: 2222, to: 22 }]],
    "connection.uri": [[{ from: "qemu:///system", to: "qemu:///session" }]],
    "connection": [[
        { from: { host: "hv1", user: "root" }, to: { host: "hv1", user: "admin" } },
        { from: { host: "hv1", user: "root" }, to: { host: "hv1", user: "root", password: "secret" } },
        { from: { host: "hv1", user: "root", privateKey: "A" }, to: { host: "hv1", user: "root", privateKey: "B" } },
        { from: { host: "hv1", user: "root" }, to: { host: "hv1", user: "root", hostKey: "SHA256:" + "a".repeat(43) } },
        { from: { host: "hv1", user: "root" }, to: { host: "hv1", user: "root", sudo: true } },
        { from: { host: "hv1", user: "root" }, to: { host: "hv1", user: "root", connectTimeout: 30 } },
        { from: { host: "hv1", user: "root", insecureIgnoreHostKey: false }, to: { host: "hv1", user: "root", insecureIgnoreHostKey: true } },
    ]],
};

/** Half-missing rows every device table shares: the outputs say a half is gone, the inputs never carry them. */
const HALF_EXAMPLES: Record<string, Example[][]> = {
    attachedConfig: [[{ from: false, to: undefined }, { from: false, to: undefined, oldsExtra: { domainRunning: false } }]],
    attachedLive: [[{ from: false, to: undefined, oldsExtra: { domainRunning: true } }]],
};

interface TableCases {
    table: RuleTable;
    /** Inputs shared by olds and news. */
    base: Record<string, unknown>;
    /** Outputs only the olds carry. */
    outputs: Record<string, unknown>;
    /** Per path, per rule row of that path (in table order), examples that must hit that row. */
    examples: Record<string, Example[][]>;
}

const connection = { host: "hv1", user: "root", port: 22, uri: "qemu:///system" };

const CASES: TableCases[] = [
    {
        table: DOMAIN_RESOURCES_RULES,
        base: { domain: "vm1", connection, memory: "1GiB", maxMemory: "4GiB", vcpus: 2, maxVcpus: 4 },
        outputs: { maxMemoryKiB: 4 * GiB, currentMemoryKiB: 1 * GiB, maximumVcpus: 4, currentVcpus: 2, state: "running" },
        examples: {
            ...PLACEMENT_EXAMPLES,
            memory: [
                // removed from the inputs
                [{ from: "1GiB", to: undefined }],
                // up or down within the current maximum
                [{ from: "1GiB", to: "2GiB" }, { from: "1GiB", to: "512MiB" }, { from: "1GiB", to: "4GiB" },
                    { from: "1GiB", to: 3072 }, { from: "1GiB", to: "6GiB", oldsExtra: { maxMemoryKiB: 8 * GiB } }],
                // above the current maximum
                [{ from: "1GiB", to: "8GiB" }, { from: "1GiB", to: "4097MiB" }, { from: "1GiB", to: "2GiB", oldsExtra: { maxMemoryKiB: 1 * GiB } }],
            ],
            maxMemory: [[{ from: "4GiB", to: undefined }], [{ from: "4GiB", to: "8GiB" }, { from: "4GiB", to: "2GiB" }, { from: "4GiB", to: 8192 }]],
            vcpus: [
                // removed from the inputs
                [{ from: 2, to: undefined }],
                // up, within the current maximum
                [{ from: 2, to: 3 }, { from: 2, to: 4 },
                    { from: 2, to: 6, oldsExtra: { maximumVcpus: 8 } },
                    // the reported live count, not the old input, is the starting point
                    { from: 2, to: 3, oldsExtra: { currentVcpus: 1 } },
                    // with the agent, the guest's online count is: 3 plugged, 1 online, 2 wanted is up
                    { from: 1, to: 2, oldsExtra: { currentVcpus: 3, guestVcpus: 1, guestAgent: true } }],
                // down, while the guest agent answered
                [{ from: 2, to: 1, oldsExtra: { guestAgent: true, guestVcpus: 2 } },
                    { from: 3, to: 1, oldsExtra: { currentVcpus: 3, guestVcpus: 3, guestAgent: true } }],
                // down without the guest agent, or above the current maximum
                [{ from: 2, to: 1 }, { from: 2, to: 1, oldsExtra: { guestAgent: false, guestVcpus: null } }, { from: 2, to: 5 },
                    { from: 4, to: 3, oldsExtra: { currentVcpus: 4 } }, { from: 2, to: 3, oldsExtra: { currentVcpus: 4 } },
                    { from: 2, to: 5, oldsExtra: { guestAgent: true, guestVcpus: 2 } }],
            ],
            maxVcpus: [[{ from: 4, to: undefined }], [{ from: 4, to: 8 }, { from: 4, to: 2 }]],
            hotplugMemory: [
                [{ from: "1GiB", to: undefined }],
                [{ from: undefined, to: "1GiB", oldsExtra: { hotplugSizeKiB: 1 * GiB } }, { from: "512MiB", to: 1024, oldsExtra: { hotplugSizeKiB: 1 * GiB } }],
                [{ from: undefined, to: "1GiB" }, { from: undefined, to: "1GiB", oldsExtra: { hotplugSizeKiB: null } }],
            ],
            rebootPolicy: [[{ from: "never", to: "ifRequired" }, { from: "ifRequired", to: "configOnly" }, { from: "configOnly", to: "never" }]],
            shutdownTimeout: [[{ from: 120, to: 300 }, { from: undefined, to: 60 }]],
            forceOff: [[{ from: false, to: true }]],
            balloonTimeout: [[{ from: 20, to: 0 }]],
            ...Object.fromEntries(([["shares", 512, 1024], ["period", 100000, 50000], ["quota", 50000, -1], ["emulatorPeriod", 100000, 20000], ["emulatorQuota", 20000, -1]] as const)
                .map(([field, from, to]) => [`cpuTune.${field}`, [[{ from, to: undefined }], [{ from, to }, { from: undefined, to: from }]]])),
            "cpuTune.vcpuPins": [
                // vCPUs dropped from the map, or the map removed
                [{ from: { 0: "1", 1: "0" }, to: { 0: "1" } }, { from: { 0: "1" }, to: undefined }, { from: { 0: "0,1" }, to: {} }, { from: { 0: "1", 1: "0" }, to: { 1: "0-0" } }],
                // a pin set or changed
                [{ from: { 0: "1" }, to: { 0: "0" } }, { from: undefined, to: { 0: "0-1" } }, { from: { 0: "1" }, to: { 0: "1", 1: "0" } }],
            ],
            "cpuTune.emulatorPin": [[{ from: "0", to: undefined }], [{ from: "0", to: "1" }, { from: undefined, to: "0-1" }]],
            ...Object.fromEntries(["hardLimit", "softLimit", "swapHardLimit"].map((field) => [`memoryTune.${field}`, [
                [{ from: "4GiB", to: undefined }, { from: "unlimited", to: undefined }],
                [{ from: "4GiB", to: "6GiB" }, { from: undefined, to: "unlimited" }, { from: "4GiB", to: "unlimited" }, { from: "unlimited", to: 4096 }],
            ]])),
            blkioWeight: [[{ from: 500, to: undefined }], [{ from: 500, to: 200 }, { from: undefined, to: 100 }]],
        },
    },
    {
        table: ATTACHED_DISK_RULES,
        base: { domain: "vm1", connection, source: "/images/a.img", sourceType: "file", target: "vdb", bus: "virtio", format: "raw",
            cache: "none", io: "native", readonly: false, serial: "DATA1", detachTimeout: 30 },
        outputs: { attachedLive: true, attachedConfig: true, domainRunning: true },
        examples: {
            ...PLACEMENT_EXAMPLES,
            source: [
                [{ from: "/images/a.img", to: "/images/b.img", newsExtra: { moveDestinationExists: false } },
                    { from: "/images/a.img", to: "/dev/vg/b", newsExtra: { moveDestinationExists: true, moveOntoExisting: true } }],
                [{ from: "/images/a.img", to: "/images/b.img" }, { from: "/images/a.img", to: "/images/b.img", newsExtra: { moveDestinationExists: true } },
                    { from: "/images/a.img", to: "/images/b.img", newsExtra: { moveDestinationExists: true, moveOntoExisting: false } }],
            ],
            sourceType: [[{ from: "file", to: "block", newsExtra: { source: "/dev/vg/b", moveDestinationExists: true, moveOntoExisting: true } }], [{ from: "file", to: "block" }]],
            target: [[{ from: "vdb", to: "vdc" }]],
            bus: [[{ from: "virtio", to: "scsi" }, { from: undefined, to: "scsi" }]],
            format: [[{ from: "raw", to: "qcow2", newsExtra: { source: "/images/b.qcow2", moveDestinationExists: false } }],
                [{ from: "raw", to: "qcow2" }, { from: undefined, to: "qcow2" }, { from: "raw", to: "qcow2", newsExtra: { source: "/images/b.qcow2", moveDestinationExists: true } }]],
            cache: [[{ from: "none", to: "writeback" }, { from: "none", to: undefined }]],
            io: [[{ from: "native", to: "threads" }]],
            readonly: [[{ from: false, to: true }, { from: undefined, to: true }, { from: true, to: false }]],
            serial: [[{ from: "DATA1", to: "DATA2" }, { from: undefined, to: "X" }]],
            size: [[{ from: "64MiB", to: undefined }], [{ from: "64MiB", to: "128MiB" }, { from: undefined, to: "1GiB" }, { from: 64, to: "65MiB" }]],
            deleteImage: [[{ from: undefined, to: true }, { from: true, to: false }]],
            iotune: [[{ from: undefined, to: { totalBytesSec: 1000 } }, { from: { totalBytesSec: 1000 }, to: { readBytesSec: 10, writeIopsSec: 5 } },
                { from: { totalIopsSec: 500 }, to: undefined }, { from: { totalIopsSec: 500 }, to: { totalIopsSec: 0 } }]],
            detachTimeout: [[{ from: 30, to: 60 }]],
            moveOntoExisting: [[{ from: undefined, to: true }]],
            afterMove: [[{ from: undefined, to: "delete" }, { from: "delete", to: "keep" }]],
            moveTimeout: [[{ from: undefined, to: 60 }]],
            copyBandwidth: [[{ from: 8, to: undefined }]],
            ...HALF_EXAMPLES,
        },
    },
    {
        table: ATTACHED_INTERFACE_RULES,
        base: { domain: "vm1", connection, type: "bridge", source: "br0", model: "virtio", mac: "52:54:00:12:34:56", linkState: "up", detachTimeout: 30 },
        outputs: { attachedLive: true, attachedConfig: true, domainRunning: true },
        examples: {
            ...PLACEMENT_EXAMPLES,
            type: [[{ from: "bridge", to: "network" }, { from: "network", to: "bridge" }]],
            source: [[{ from: "br0", to: "br1" }]],
            model: [[{ from: "virtio", to: "e1000" }, { from: undefined, to: "rtl8139" }]],
            mac: [[{ from: "52:54:00:12:34:56", to: "52:54:00:12:34:57" }, { from: "52:54:00:12:34:56", to: "52:54:00:AA:34:56" }]],
            linkState: [[{ from: "up", to: "down" }, { from: "down", to: "up" }]],
            detachTimeout: [[{ from: 30, to: 5 }]],
            ...HALF_EXAMPLES,
        },
    },
    {
        table: ATTACHED_CDROM_RULES,
        base: { domain: "vm1", connection, source: "/iso/a.iso", target: "sdb", bus: "scsi", detachTimeout: 30 },
        outputs: { ownsDrive: true, lastMediaChange: "attached", attachedLive: true, attachedConfig: true, domainRunning: true },
        examples: {
            ...PLACEMENT_EXAMPLES,
            source: [[{ from: "/iso/a.iso", to: "/iso/b.iso" }, { from: undefined, to: "/iso/a.iso" }, { from: "/iso/a.iso", to: undefined }]],
            target: [[{ from: "sdb", to: "sdc" }, { from: "hdc", to: "sdb" }]],
            bus: [[{ from: "scsi", to: "sata" }, { from: "ide", to: "scsi" }]],
            detachTimeout: [[{ from: 30, to: 60 }]],
            ...HALF_EXAMPLES,
        },
    },
];

/** A deep copy of `values` with `path` set (or removed when `value` is undefined). */
function withPath(values: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
    const copy = JSON.parse(JSON.stringify(values)) as Record<string, unknown>;
    const keys = path.split(".");
    let node = copy;
    for (const key of keys.slice(0, -1)) {
        if (typeof node[key] !== "object" || node[key] === null) node[key] = {};
        node = node[key] as Record<string, unknown>;
    }
    const last = keys[keys.length - 1];
    if (value === undefined) delete node[last];
    else node[last] = value;
    return copy;
}

function rowLabel(rule: ChangeRule): string {
    return `${rule.path} (${rule.when})`;
}

for (const { table, base, outputs, examples } of CASES) {
    describe(`rule tables: ${table.resource}, every row`, () => {
        it("has examples for every row of every path, and no examples for paths the table lacks", () => {
            const paths = [...new Set(table.rules.map((r) => r.path))];
            assert.deepEqual(Object.keys(examples).sort(), [...paths].sort());
            for (const path of paths) {
                const rows = table.rules.filter((r) => r.path === path);
                assert.equal(examples[path].length, rows.length, `${path}: ${rows.length} rows, ${examples[path].length} example groups`);
                for (const group of examples[path]) assert.ok(group.length > 0);
            }
        });

        it("every property has at least one rule row and every rule row a property", () => {
            const specPaths = table.properties.map((p) => p.path);
            for (const path of specPaths) assert.ok(table.rules.some((r) => r.path === path), `no rule for ${path}`);
            for (const rule of table.rules) assert.ok(specPaths.includes(rule.path), `no property for rule ${rule.path}`);
            assert.equal(new Set(specPaths).size, specPaths.length, "duplicate property");
        });

        table.rules.forEach((rule) => {
            const index = table.rules.filter((r) => r.path === rule.path).indexOf(rule);
            for (const running of [true, false]) {
                const expected = running ? rule.running : rule.shutOff;
                it(`${rowLabel(rule)} → ${expected} when ${running ? "running" : "shut off"}`, () => {
                    const group = examples[rule.path]?.[index];
                    assert.ok(group, `no example for ${rowLabel(rule)}`);
                    for (const example of group) {
                        const olds = withPath({ ...base, ...outputs, ...example.oldsExtra }, rule.path, example.from);
                        const news = withPath({ ...base, ...example.newsExtra }, rule.path, example.to);
                        // The example changes exactly one thing, as the table sees it (with newsExtra: the one at the row's path).
                        assert.notDeepEqual(valueAt(olds, rule.path), valueAt(news, rule.path));
                        const changes = classifyChanges(table, olds, news, running).filter((c) => !example.newsExtra || c.path === rule.path);
                        const label = `${JSON.stringify(example.from)} → ${JSON.stringify(example.to)}`;
                        assert.deepEqual(changes.map((c) => [c.path, c.kind]), [[rule.path, expected]], label);
                        assert.equal(changes[0].rule, rule, `${label} picked row "${changes[0].rule.when}"`);
                    }
                });
            }
        });
    });
}

describe("rule tables: a device's missing half", () => {
    const nic = { domain: "vm1", connection, type: "bridge", source: "br0", model: "virtio", mac: "52:54:00:12:34:56", linkState: "up" };
    const changesOf = (table: RuleTable, olds: Record<string, unknown>, news: Record<string, unknown>) =>
        classifyChanges(table, olds, news, true).map((c) => [c.path, c.kind]);

    it("is no change where nothing is missing: attachedLive false on a shut-off domain, or in a state written before domainRunning", () => {
        assert.deepEqual(changesOf(ATTACHED_INTERFACE_RULES, { ...nic, attachedLive: false, attachedConfig: true, domainRunning: false }, nic), []);
        assert.deepEqual(changesOf(ATTACHED_INTERFACE_RULES, { ...nic, attachedLive: false, attachedConfig: true }, nic), []);
        assert.deepEqual(changesOf(ATTACHED_INTERFACE_RULES, { ...nic, attachedLive: true, attachedConfig: true, domainRunning: true }, nic), []);
    });

    it("a CD-ROM drive the domain had (ownsDrive false) is not ours to plug: no change", () => {
        const drive = { domain: "vm1", connection, source: "/iso/a.iso", target: "hdc", bus: "ide" };
        assert.deepEqual(changesOf(ATTACHED_CDROM_RULES, { ...drive, ownsDrive: false, attachedLive: true, attachedConfig: false, domainRunning: true }, drive), []);
    });

    it("a half missing together with another change: both rows, never a replacement", () => {
        const olds = { ...nic, attachedLive: true, attachedConfig: false, domainRunning: true };
        assert.deepEqual(changesOf(ATTACHED_INTERFACE_RULES, olds, { ...nic, linkState: "down" }), [["linkState", "live"], ["attachedConfig", "live"]]);
    });
});

describe("rule tables: a disk move", () => {
    const disk = { domain: "vm1", connection, source: "/images/a.raw", sourceType: "file", target: "vdb", format: "raw" };
    const changesOf = (news: Record<string, unknown>) =>
        classifyChanges(ATTACHED_DISK_RULES, { ...disk, attachedLive: true, attachedConfig: true, domainRunning: true }, { ...disk, ...news }, true).map((c) => [c.path, c.kind]);

    it("a new source where nothing is, with a new format: both live (the copy converts), never a replacement", () => {
        assert.deepEqual(changesOf({ source: "/fast/a.qcow2", format: "qcow2", moveDestinationExists: false }), [["source", "live"], ["format", "live"]]);
    });

    it("an existing source is a swap unless moveOntoExisting; an unread fact (offline preview) is a swap too", () => {
        assert.deepEqual(changesOf({ source: "/dev/vg/a", moveDestinationExists: true }), [["source", "replace"]]);
        assert.deepEqual(changesOf({ source: "/dev/vg/a", sourceType: "block", moveDestinationExists: true, moveOntoExisting: true }),
            [["source", "live"], ["sourceType", "live"], ["moveOntoExisting", "none"]]);
        assert.deepEqual(changesOf({ source: "/fast/a.raw" }), [["source", "replace"]]);
    });
});

describe("rule tables: connection", () => {
    const tables = [DOMAIN_RESOURCES_RULES, ATTACHED_DISK_RULES, ATTACHED_INTERFACE_RULES, ATTACHED_CDROM_RULES];
    const base = { domain: "vm1", connection: { host: "hv1", user: "root", privateKey: "KEY-A" } };

    it("a credentials change is kind none, never replace, in every table", () => {
        for (const table of tables) {
            for (const running of [true, false]) {
                for (const change of [{ privateKey: "KEY-B" }, { password: "pw" }, { user: "admin" }, { privateKeyPassphrase: "x" }, { knownHostsPath: "/k" }]) {
                    const news = { ...base, connection: { ...base.connection, ...change } };
                    const changes = classifyChanges(table, base, news, running);
                    assert.deepEqual(changes.map((c) => [c.path, c.kind]), [["connection", "none"]], `${table.resource} ${JSON.stringify(change)}`);
                }
            }
        }
    });

    it("a host change is replace in every table, and does not also count as a credentials change", () => {
        for (const table of tables) {
            for (const running of [true, false]) {
                const news = { ...base, connection: { ...base.connection, host: "hv2" } };
                assert.deepEqual(classifyChanges(table, base, news, running).map((c) => [c.path, c.kind]), [["connection.host", "replace"]]);
            }
        }
    });

    it("host and credentials changed together: both rows", () => {
        const news = { ...base, connection: { ...base.connection, host: "hv2", password: "pw" } };
        assert.deepEqual(classifyChanges(ATTACHED_DISK_RULES, base, news, true).map((c) => [c.path, c.kind]),
            [["connection.host", "replace"], ["connection", "none"]]);
    });
});

describe("rule tables: renderRuleTable", () => {
    for (const table of [DOMAIN_RESOURCES_RULES, ATTACHED_DISK_RULES, ATTACHED_INTERFACE_RULES, ATTACHED_CDROM_RULES]) {
        it(`${table.resource}: a heading, a header and one Markdown row per rule`, () => {
            const lines = renderRuleTable(table).split("\n");
            assert.equal(lines[0], `#### ${table.resource}`);
            assert.equal(lines[2], "| property | change | domain running | domain shut off | what runs |");
            assert.equal(lines[3], "| --- | --- | --- | --- | --- |");
            const rows = lines.slice(4);
            assert.equal(rows.length, table.rules.length);
            rows.forEach((row, i) => {
                const rule = table.rules[i];
                assert.ok(row.startsWith(`| \`${rule.path}\` | ${rule.when} | `), row);
                assert.ok(row.endsWith(` | ${rule.how} |`), row);
                assert.equal(row.split(" | ").length, 5, row);
            });
        });
    }

    it("words each kind, bolding reboot and replace", () => {
        const text = renderRuleTable(DOMAIN_RESOURCES_RULES);
        assert.ok(text.includes("| `memory` | above the current maximum | **reboot** | config only |"), text);
        assert.ok(text.includes("| `domain` | another domain | **replace** | **replace** |"), text);
        assert.ok(text.includes("| `memory` | up or down within the current maximum | live | config only |"), text);
        assert.ok(text.includes("| `rebootPolicy` | any change | stored only | stored only |"), text);
    });
});
