/**
 * Issue 14 through the real CLI (pll-guest1): an AttachedDisk that created its image with
 * deleteImage: true, cache none → writeback. The preview shows a replacement (the guest sees the
 * disk go and come back); the `up` keeps the very file and its data, because the engine's diff and
 * the replacement's delete run in the same provider process; `destroy` then removes the file.
 */
import assert from "node:assert/strict";
import { closeSync, existsSync, fsyncSync, openSync, readSync, statSync, writeSync } from "node:fs";
import type * as AutomationModule from "@pulumi/pulumi/automation";
import { configXml, diskByTarget, GUEST1, missingPath, removeFiles, resetGuest, resetGuestInBackground, RigEnv, rigUp } from "../rig/rig-env";
import { changed, Consumer, installConsumer, openTestStack, rigStackConnection, TestStack } from "./engine-fixture";

const DISK = "replug-data";
const TOKEN = Buffer.alloc(64 * 1024, 0x5a);
TOKEN.write("pll-engine-replug");

function identityOf(path: string): string {
    const s = statSync(path, { bigint: true });
    return `${s.dev}:${s.ino}:${s.birthtimeNs}`;
}

function readBlock(path: string): Buffer {
    const fd = openSync(path, "r");
    try {
        const block = Buffer.alloc(TOKEN.length);
        readSync(fd, block, 0, block.length, 1024 * 1024);
        return block;
    } finally {
        closeSync(fd);
    }
}

describe("engine: a disk re-plug (cache none → writeback) keeps the image the disk created; destroy removes it (pll-guest1)", function () {
    this.timeout(600_000);
    let env: RigEnv;
    let consumer: Consumer;
    let stack: TestStack;
    let image = "";
    let identity = "";

    const programFor = (c: Consumer, cache: "none" | "writeback"): AutomationModule.PulumiFn => async () => {
        const sdk = c.load();
        const disk = new sdk.AttachedDisk(DISK, { connection: rigStackConnection(c, env), domain: GUEST1, source: image, target: "vdb",
            size: "16MiB", cache, deleteImage: true });
        return { imageCreated: disk.imageCreated, imageIdentity: disk.imageIdentity };
    };

    before(async function () {
        env = rigUp();
        resetGuest(GUEST1);
        image = missingPath(env, "engine-replug");
        consumer = await installConsumer();
        stack = await openTestStack(consumer, "pll-replug-stack", programFor(consumer, "none"));
    });

    after(async function () {
        if (stack) {
            await stack.destroy().catch(() => undefined);
            await stack.remove();
        }
        removeFiles([image]);
        resetGuestInBackground(GUEST1);
    });

    it("up: creates the image and attaches it; the test writes data into it", async () => {
        const run = await stack.up();
        assert.deepEqual(changed(run), { [DISK]: "create" });
        assert.equal(run.outputs.imageCreated.value, true);
        identity = identityOf(image);
        const fd = openSync(image, "r+");
        writeSync(fd, TOKEN, 0, TOKEN.length, 1024 * 1024);
        fsyncSync(fd);
        closeSync(fd);
    });

    it("cache none → writeback: the preview shows a replacement; up keeps the same file and its data", async () => {
        stack.setProgram(programFor(consumer, "writeback"));
        const preview = await stack.preview();
        assert.deepEqual(changed(preview), { [DISK]: "replace" }, "the guest sees the disk go and come back: a replacement, not an update");
        const run = await stack.up();
        assert.deepEqual(changed(run), { [DISK]: "replace" });
        assert.equal(identityOf(image), identity, "the same file (device, inode, birth time)");
        assert.ok(readBlock(image).equals(TOKEN), "the data written before is still there");
        assert.equal(run.outputs.imageCreated.value, true, "the new disk owns the image");
        assert.match(String(run.outputs.imageIdentity?.value), /^\d+:\d+ \d{4}-/, "and knows which file it is");
        assert.equal(diskByTarget(configXml(GUEST1), "vdb")?.cache, "writeback");
        await stack.preview({ expectNoChanges: true });
    });

    it("destroy: the real delete removes the file", async () => {
        await stack.destroy();
        assert.equal(diskByTarget(configXml(GUEST1), "vdb"), undefined);
        assert.equal(existsSync(image), false);
    });
});
