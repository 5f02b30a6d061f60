/** AttachedDisk's check: a new format for the same image is refused (QEMU would read its bytes in another format). */
import assert from "node:assert/strict";
import { providers } from "../../provider/index";

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

    it("a new format with a new source, the same format, or a first create pass", async () => {
        assert.deepEqual(await failuresOf(disk({}), disk({ source: "/var/lib/images/a.qcow2", format: "qcow2" })), []);
        assert.deepEqual(await failuresOf(disk({ format: "raw" }), disk({})), []);
        assert.deepEqual(await failuresOf({}, disk({ format: "qcow2" })), []);
    });
});
