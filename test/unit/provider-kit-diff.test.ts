import assert from "node:assert/strict";
import { providers, ProviderName } from "../../provider";
import { UNKNOWN_VALUE } from "../../provider/rules/rule-table";

type Props = Record<string, unknown>;

interface Diff {
    changes?: boolean;
    replaces?: string[];
    deleteBeforeReplace?: boolean;
}

async function diff(name: ProviderName, olds: Props, news: Props): Promise<Diff> {
    const provider = providers[name];
    assert.ok(provider.diff, `${name} has diff`);
    return (await provider.diff(`${name}-id`, olds, news)) as Diff;
}

async function check(name: ProviderName, news: Props): Promise<{ inputs?: unknown; failures?: Array<{ property: string; reason: string }> }> {
    const provider = providers[name];
    assert.ok(provider.check, `${name} has check`);
    return provider.check({}, news);
}

/** The diff's verdict in one comparable shape, with `changes` required to be a boolean. */
function verdict(d: Diff): { changes: boolean; replaces: string[]; deleteBeforeReplace: boolean } {
    assert.equal(typeof d.changes, "boolean", "changes must be explicit");
    assert.equal(typeof d.deleteBeforeReplace, "boolean");
    assert.ok(Array.isArray(d.replaces));
    return { changes: d.changes as boolean, replaces: d.replaces as string[], deleteBeforeReplace: d.deleteBeforeReplace as boolean };
}

const NOTHING = { changes: false, replaces: [], deleteBeforeReplace: false };
const STORED = { changes: true, replaces: [], deleteBeforeReplace: false };

const connection = { host: "hv1", user: "root", privateKey: "KEY" };
const GiB = 1024 * 1024;

const inputs: Record<ProviderName, Props> = {
    domainResources: { domain: "vm1", connection, memory: "1GiB", vcpus: 2 },
    attachedDisk: { domain: "vm1", connection, source: "/images/data.img" },
    attachedInterface: { domain: "vm1", connection, type: "bridge", source: "br0" },
    attachedCdrom: { domain: "vm1", connection, source: "/iso/a.iso" },
};

/** What each provider stored after create, for those inputs (defaults and reported values filled in). */
const outputs: Record<ProviderName, Props> = {
    domainResources: { ...inputs.domainResources, currentMemoryKiB: 1 * GiB, maxMemoryKiB: 4 * GiB, balloonActualKiB: 1 * GiB,
        balloonSettled: true, currentVcpus: 2, maximumVcpus: 4, state: "running", pendingReboot: false, pendingChanges: [] },
    attachedDisk: { ...inputs.attachedDisk, target: "vdb", sourceType: "file", bus: "virtio", format: "raw", readonly: false,
        attachedLive: true, attachedConfig: true },
    attachedInterface: { ...inputs.attachedInterface, mac: "52:54:00:12:34:56", model: "virtio", linkState: "up",
        attachedLive: true, attachedConfig: true },
    attachedCdrom: { ...inputs.attachedCdrom, target: "sda", bus: "scsi", ownsDrive: true, lastMediaChange: "attached" },
};

/**
 * The same inputs with every default written out. Diffing stored outputs against these isolates each
 * test from the absent-vs-default comparison, which has its own test below.
 */
const explicitInputs: Record<ProviderName, Props> = {
    domainResources: inputs.domainResources,
    attachedDisk: { ...inputs.attachedDisk, bus: "virtio", format: "raw", readonly: false },
    attachedInterface: { ...inputs.attachedInterface, model: "virtio", linkState: "up" },
    attachedCdrom: inputs.attachedCdrom,
};

const NAMES = Object.keys(inputs) as ProviderName[];

/** Devices free their target before the replacement comes; DomainResources' delete is a no-op, so it creates first. */
const deletesFirst = (name: ProviderName): boolean => name !== "domainResources";

describe("provider-kit: diff", () => {
    it("exposes the four providers", () => {
        assert.deepEqual(Object.keys(providers).sort(), ["attachedCdrom", "attachedDisk", "attachedInterface", "domainResources"]);
    });

    for (const name of NAMES) {
        it(`${name}: identical olds and news → changes false (explicitly), no replaces`, async () => {
            assert.deepEqual(verdict(await diff(name, inputs[name], inputs[name])), NOTHING);
        });

        it(`${name}: only __provider differs → changes false`, async () => {
            const olds = { ...inputs[name], __provider: "serialized-provider-v1" };
            const news = { ...inputs[name], __provider: "serialized-provider-v2" };
            assert.deepEqual(verdict(await diff(name, olds, news)), NOTHING);
            assert.deepEqual(verdict(await diff(name, inputs[name], { ...inputs[name], __provider: "x" })), NOTHING);
        });

        // Pulumi passes the stored outputs as olds and the program's inputs as news. Fails while
        // rule-table.ts normalized() skips normalize for undefined (bus/format/readonly/model/linkState defaults).
        it(`${name}: stored outputs vs the same inputs → changes false`, async () => {
            const news = { ...inputs[name], __provider: "p2" };
            assert.deepEqual(verdict(await diff(name, { ...outputs[name], __provider: "p1" }, news)), NOTHING);
        });

        it(`${name}: stored outputs vs inputs with defaults written out → changes false`, async () => {
            assert.deepEqual(verdict(await diff(name, outputs[name], explicitInputs[name])), NOTHING);
        });

        it(`${name}: domain change → replaces ["domain"], deleteBeforeReplace ${deletesFirst(name)}`, async () => {
            const d = verdict(await diff(name, outputs[name], { ...explicitInputs[name], domain: "vm2" }));
            assert.deepEqual(d, { changes: true, replaces: ["domain"], deleteBeforeReplace: deletesFirst(name) });
        });

        it(`${name}: connection.host change → replaces the top-level "connection"`, async () => {
            const news = { ...explicitInputs[name], connection: { ...connection, host: "hv2" } };
            assert.deepEqual(verdict(await diff(name, outputs[name], news)), { changes: true, replaces: ["connection"], deleteBeforeReplace: deletesFirst(name) });
        });

        it(`${name}: connection.host and port together → "connection" listed once`, async () => {
            const news = { ...explicitInputs[name], connection: { ...connection, host: "hv2", port: 2222 } };
            assert.deepEqual(verdict(await diff(name, outputs[name], news)).replaces, ["connection"]);
        });

        it(`${name}: credentials change → changes true, nothing replaced`, async () => {
            const news = { ...inputs[name], connection: { ...connection, privateKey: "OTHER-KEY", password: "pw" } };
            assert.deepEqual(verdict(await diff(name, inputs[name], news)), STORED);
        });

        it(`${name}: unknown host during preview → replace`, async () => {
            const news = { ...inputs[name], connection: { ...connection, host: UNKNOWN_VALUE } };
            assert.deepEqual(verdict(await diff(name, inputs[name], news)), { changes: true, replaces: ["connection"], deleteBeforeReplace: deletesFirst(name) });
        });
    }

    describe("attachedDisk", () => {
        it("a device field change replaces it; several are listed each once", async () => {
            const base = outputs.attachedDisk;
            // A new source is a move or a swap by what is at the path: a host that cannot be read fails the diff (review finding 4).
            await assert.rejects(diff("attachedDisk", base, { ...explicitInputs.attachedDisk, source: "/images/b.img" }));
            // (A new format on the same source is refused: disk-reformat.test.ts.)
            const d = verdict(await diff("attachedDisk", base, { ...explicitInputs.attachedDisk, bus: "scsi", cache: "none", readonly: true }));
            assert.deepEqual([...d.replaces].sort(), ["bus", "cache", "readonly"]);
            assert.equal(d.deleteBeforeReplace, true);
        });

        it("detachTimeout only → stored, not replaced", async () => {
            assert.deepEqual(verdict(await diff("attachedDisk", inputs.attachedDisk, { ...inputs.attachedDisk, detachTimeout: 90 })), STORED);
        });

        it("no target in the news keeps the stored one", async () => {
            const olds = { ...inputs.attachedDisk, target: "vdb" };
            assert.deepEqual(verdict(await diff("attachedDisk", olds, inputs.attachedDisk)), NOTHING);
        });
    });

    describe("attachedInterface", () => {
        it("source and link changes are live (no replace); a model change replaces", async () => {
            const base = { ...inputs.attachedInterface, linkState: "up", model: "virtio" };
            assert.deepEqual(verdict(await diff("attachedInterface", base, { ...base, source: "br1" })), STORED);
            assert.deepEqual(verdict(await diff("attachedInterface", base, { ...base, linkState: "down" })), STORED);
            assert.deepEqual(verdict(await diff("attachedInterface", base, { ...base, model: "e1000" })),
                { changes: true, replaces: ["model"], deleteBeforeReplace: true });
        });

        it("a MAC differing only in case is no change", async () => {
            const olds = { ...inputs.attachedInterface, mac: "52:54:00:ab:cd:ef" };
            assert.deepEqual(verdict(await diff("attachedInterface", olds, { ...olds, mac: "52:54:00:AB:CD:EF" })), NOTHING);
        });
    });

    describe("attachedCdrom", () => {
        it("swapping or ejecting the ISO is live; a bus change replaces", async () => {
            const base = inputs.attachedCdrom;
            assert.deepEqual(verdict(await diff("attachedCdrom", base, { ...base, source: "/iso/b.iso" })), STORED);
            const { source: _s, ...ejected } = base;
            void _s;
            assert.deepEqual(verdict(await diff("attachedCdrom", base, ejected)), STORED);
            assert.deepEqual(verdict(await diff("attachedCdrom", { ...base, bus: "scsi" }, { ...base, bus: "sata" })),
                { changes: true, replaces: ["bus"], deleteBeforeReplace: true });
        });
    });

    describe("domainResources: the state stored at the last operation picks the column", () => {
        const olds = (state: string): Props => ({ ...outputs.domainResources, state });

        it("memory within the running maximum → live, no replace", async () => {
            assert.deepEqual(verdict(await diff("domainResources", olds("running"), { ...inputs.domainResources, memory: "2GiB" })), STORED);
        });

        it("memory above the running maximum → reboot, shown as replace of memory", async () => {
            assert.deepEqual(verdict(await diff("domainResources", olds("running"), { ...inputs.domainResources, memory: "8GiB" })),
                { changes: true, replaces: ["memory"], deleteBeforeReplace: false });
        });

        it("the same change on a shut-off domain → config only, no replace", async () => {
            assert.deepEqual(verdict(await diff("domainResources", olds("shut off"), { ...inputs.domainResources, memory: "8GiB" })), STORED);
            assert.deepEqual(verdict(await diff("domainResources", olds("shut off"), { ...inputs.domainResources, vcpus: 1 })), STORED);
        });

        it("a paused domain counts as running", async () => {
            assert.deepEqual(verdict(await diff("domainResources", olds("paused"), { ...inputs.domainResources, vcpus: 1 })).replaces, ["vcpus"]);
        });

        it("vcpus up within the maximum → live; down → replace", async () => {
            assert.deepEqual(verdict(await diff("domainResources", olds("running"), { ...inputs.domainResources, vcpus: 4 })), STORED);
            assert.deepEqual(verdict(await diff("domainResources", olds("running"), { ...inputs.domainResources, vcpus: 1 })).replaces, ["vcpus"]);
        });

        it("memory 1024 vs \"1GiB\" → no change", async () => {
            assert.deepEqual(verdict(await diff("domainResources", olds("running"), { ...inputs.domainResources, memory: 1024 })), NOTHING);
        });

        it("rebootPolicy change → stored only", async () => {
            assert.deepEqual(verdict(await diff("domainResources", olds("running"), { ...inputs.domainResources, rebootPolicy: "ifRequired" })), STORED);
        });
    });
});

describe("provider-kit: check", () => {
    for (const name of NAMES) {
        it(`${name}: good inputs come back unchanged as inputs`, async () => {
            const result = await check(name, inputs[name]);
            assert.equal(result.failures, undefined);
            assert.deepEqual(result.inputs, inputs[name]);
        });

        it(`${name}: a newline in domain is a failure`, async () => {
            const result = await check(name, { ...inputs[name], domain: "vm1\nreboot" });
            assert.equal(result.inputs, undefined);
            assert.deepEqual(result.failures?.map((f) => f.property), ["domain"]);
            assert.match(result.failures?.[0].reason ?? "", /NUL or line break/);
        });

        it(`${name}: missing placement is reported`, async () => {
            const { domain: _d, connection: _c, ...rest } = inputs[name];
            void _d; void _c;
            const result = await check(name, rest);
            const properties = result.failures?.map((f) => f.property) ?? [];
            for (const p of ["domain", "connection", "connection.host"]) assert.ok(properties.includes(p), p);
        });

        it(`${name}: unknown values pass check during preview`, async () => {
            const result = await check(name, { ...inputs[name], domain: UNKNOWN_VALUE });
            assert.equal(result.failures, undefined);
        });
    }

    const bad: Array<[ProviderName, string, unknown, RegExp]> = [
        ["domainResources", "memory", "512", /needs a unit/],
        ["domainResources", "memory", "1MiB", /unit mistake/],
        ["domainResources", "maxMemory", "4XB", /unknown unit/],
        ["domainResources", "vcpus", 0, /at least 1/],
        ["domainResources", "vcpus", 1.5, /at least 1/],
        ["domainResources", "maxVcpus", -1, /at least 1/],
        ["domainResources", "rebootPolicy", "always", /must be one of/],
        ["domainResources", "forceOff", "yes", /true or false/],
        ["attachedInterface", "mac", "zz", /52:54:00:12:34:56/],
        ["attachedInterface", "mac", "01:00:5e:00:00:01", /multicast/],
        ["attachedInterface", "type", "direct", /must be one of/],
        ["attachedInterface", "linkState", "off", /must be one of/],
        ["attachedDisk", "bus", "floppy", /must be one of/],
        ["attachedDisk", "source", "images/a.img", /absolute path/],
        ["attachedDisk", "format", "vmdk", /must be one of/],
        ["attachedDisk", "serial", "<bad>", /letters, digits/],
        ["attachedDisk", "readonly", "true", /true or false/],
        ["attachedDisk", "detachTimeout", 0, /at least 1/],
        ["attachedCdrom", "bus", "floppy", /must be one of/],
        ["attachedCdrom", "source", "a.iso", /absolute path/],
    ];
    for (const [name, property, value, reason] of bad) {
        it(`${name}: ${property} = ${JSON.stringify(value)} fails`, async () => {
            const result = await check(name, { ...inputs[name], [property]: value });
            assert.equal(result.inputs, undefined);
            assert.deepEqual(result.failures?.map((f) => f.property), [property]);
            assert.match(result.failures?.[0].reason ?? "", reason);
            assert.ok(result.failures?.[0].reason.startsWith(`${property}: `));
        });
    }

    it("required device fields: disk source, interface type and source", async () => {
        const { source: _s, ...noSource } = inputs.attachedDisk;
        void _s;
        assert.deepEqual((await check("attachedDisk", noSource)).failures, [{ property: "source", reason: "source is required" }]);
        const { type: _t, source: _s2, ...noType } = inputs.attachedInterface;
        void _t; void _s2;
        assert.deepEqual((await check("attachedInterface", noType)).failures?.map((f) => f.property), ["type", "source"]);
    });

    it("several bad fields are all reported", async () => {
        const result = await check("domainResources", { ...inputs.domainResources, memory: "512", vcpus: 0, domain: "a\nb" });
        assert.deepEqual(result.failures?.map((f) => f.property), ["domain", "memory", "vcpus"]);
    });
});
