/** AttachedDisk: a new format for the same image is refused (QEMU would read its bytes in another format), by check and by diff. */
import assert from "node:assert/strict";
import { InputError } from "../../provider/errors";
import { providers } from "../../provider/index";
import { UNKNOWN_VALUE } from "../../provider/rules/rule-table";

const connection = { host: "hv1", user: "root" };
const disk = (extra: Record<string, unknown>) => ({ connection, domain: "vm1", source: "/var/lib/images/a.img", ...extra });
const failuresOf = async (olds: Record<string, unknown>, news: Record<string, unknown>) =>
    (await providers.attachedDisk.check!(olds, news)).failures ?? [];

describe("AttachedDisk check: format", () => {
    it("raw → qcow2 on the same source is refused, naming qemu-img convert and a new source", async () => {
        const [failure] = await failuresOf(disk({}), disk({ format: "qcow2" }));
        assert.equal(failure?.property, "format");
        assert.match(failure.reason, /raw → qcow2 on the same source \/var\/lib\/images\/a\.img/);
        assert.match(failure.reason, /qemu-img convert -f raw -O qcow2/);
    });

    it("qcow2 → raw (the default) is refused as well", async () => {
        assert.deepEqual((await failuresOf(disk({ format: "qcow2" }), disk({}))).map((f) => f.property), ["format"]);
    });

    it("a new format with a new source, the same format, a first create, or a format unknown until apply pass", async () => {
        assert.deepEqual(await failuresOf(disk({}), disk({ source: "/var/lib/images/a.qcow2", format: "qcow2" })), []);
        assert.deepEqual(await failuresOf(disk({ format: "raw" }), disk({})), []);
        assert.deepEqual(await failuresOf({}, disk({ format: "qcow2" })), []);
        assert.deepEqual(await failuresOf(disk({}), disk({ format: UNKNOWN_VALUE })), []);
    });
});

/**
 * The same rule against the state's outputs: a move whose later step failed stores the new source
 * and format beside the old inputs, so only the diff (the preview) can see the change.
 */
describe("AttachedDisk diff: format against the state", () => {
    const moved = disk({ source: "/var/lib/images/b.qcow2", format: "qcow2", target: "vdb", sourceType: "file", bus: "virtio", attachedLive: true, attachedConfig: true });
    const diffOf = (news: Record<string, unknown>) => providers.attachedDisk.diff!("vm1#disk/vdb", moved, news);

    it("qcow2 → raw on the source the state names is refused, naming domain, disk, both formats and the fix, though check (old inputs: another source) passes", async () => {
        const news = disk({ source: "/var/lib/images/b.qcow2", format: "raw" });
        assert.deepEqual(await failuresOf(disk({}), news), [], "check compares the old inputs' source");
        await assert.rejects(diffOf(news), (error: Error) => error instanceof InputError
            && /qcow2 → raw on the same source \/var\/lib\/images\/b\.qcow2 would read the image's bytes as raw/.test(error.message)
            && /domain 'vm1', device disk vdb/.test(error.message)
            && /Fix: keep format "qcow2", or convert a copy \(qemu-img convert -f qcow2 -O raw \/var\/lib\/images\/b\.qcow2 NEW\)/.test(error.message));
    });

    it("the state's format, or a format or source unknown until apply, is diffed as before", async () => {
        assert.equal((await diffOf(disk({ source: "/var/lib/images/b.qcow2", format: "qcow2", target: "vdb" }))).changes, false);
        assert.ok(await diffOf(disk({ source: "/var/lib/images/b.qcow2", format: UNKNOWN_VALUE })));
        assert.ok(await diffOf(disk({ source: UNKNOWN_VALUE, format: "raw" })));
    });
});
