/**
 * What the engine does with the values the resources hand it, found by running the quickstart
 * through the real CLI: outputs pass through a protobuf Struct (which refuses undefined), and only
 * registered property names become outputs (so a MAC libvirt chose must be registered).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { toDynamicProvider } from "../../provider/providers/provider-kit";
import { DOMAIN_RESOURCES_RULES } from "../../provider/rules/domain-resources-rules";

type Props = Record<string, unknown>;

describe("engine encoding: provider outputs", () => {
    const echoing = toDynamicProvider<Props, Props>({
        table: DOMAIN_RESOURCES_RULES,
        checks: () => [],
        wasRunning: () => true,
        create: async (inputs) => ({ id: "x", outs: { ...inputs, serial: undefined, nested: { a: 1, b: undefined }, list: [1, undefined] } }),
        read: async (_id, olds) => ({ ...olds, serial: undefined }),
        update: async (_id, _olds, news) => ({ ...news, serial: undefined }),
        delete: async () => undefined,
    });

    it("drops undefined values, so the dynamic-provider server can encode create, read and update results", async () => {
        const created = await echoing.create({ domain: "vm1" });
        assert.deepEqual(created.outs, { domain: "vm1", nested: { a: 1 }, list: [1, null] });
        assert.doesNotThrow(() => Struct.fromJavaScript(created.outs as Record<string, never>));
        const read = await echoing.read!("x", { domain: "vm1" });
        assert.deepEqual(read.props, { domain: "vm1" });
        const updated = await echoing.update!("x", {}, { domain: "vm2" });
        assert.deepEqual(updated.outs, { domain: "vm2" });
    });

    it("the raw value would have failed the way the engine reported it", () => {
        assert.throws(() => Struct.fromJavaScript({ serial: undefined } as unknown as Record<string, never>), /Unexpected struct type/);
    });
});

describe("engine encoding: SDK outputs the provider fills in", function () {
    // A node of its own that loads the whole Pulumi SDK: 1.3 s on a quiet machine, past mocha's
    // default 2 s when the CPU is shared (it failed so under load).
    this.timeout(30_000);
    // In a child process: pulumi.runtime.setMocks is process-wide, and the engine suites share mocha's.
    const program = `
        const pulumi = require("@pulumi/pulumi");
        pulumi.runtime.setMocks({
            newResource: (args) => ({ id: args.name + "-id", state: { ...args.inputs, mac: "52:54:00:00:00:01", target: "vdb" } }),
            call: (args) => args.inputs,
        }, "project", "stack", false);
        const { AttachedInterface, AttachedDisk } = require(${JSON.stringify(join(__dirname, "../../sdk"))});
        const connection = { host: "hv1", user: "root" };
        const nic = new AttachedInterface("nic", { connection, domain: "vm1", type: "bridge", source: "br0" });
        const disk = new AttachedDisk("disk", { connection, domain: "vm1", source: "/images/d.raw" });
        if (!pulumi.Output.isInstance(nic.mac) || !pulumi.Output.isInstance(disk.target)) throw new Error("not registered as outputs");
        pulumi.all([nic.mac, disk.target]).apply((v) => console.log(JSON.stringify(v)));
    `;

    it("exposes a MAC and a target the user left out", () => {
        const out = execFileSync(process.execPath, ["-e", program], { encoding: "utf8", stdio: "pipe", cwd: join(__dirname, "../../..") });
        assert.deepEqual(JSON.parse(out.trim().split("\n").pop() ?? ""), ["52:54:00:00:00:01", "vdb"]);
    });
});
