/**
 * Issue 16 through the real CLI, on a throwaway copy of pll-guest2 (pll-mv-engine): an
 * AttachedDisk's source set to a new path (raw → qcow2) on the running domain. The preview shows
 * an update, never a replacement; `up` moves the disk (same target, both XMLs on the new file, the
 * data in it); the next preview has no changes. Before the move (a new source was a replacement),
 * the preview showed "replace". The throwaway has no OS and never releases a detached disk, so the
 * stack is removed (not destroyed) and the domain with it.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import type * as AutomationModule from "@pulumi/pulumi/automation";
import { ThrowawayDomain } from "../rig/throwaway-domain";
import { configXml, createImage, diskByTarget, GUEST2, liveXml, missingPath, removeFiles, RigEnv, rigUp } from "../rig/rig-env";
import { changed, Consumer, EngineRunError, installConsumer, openTestStack, rigStackConnection, TestStack } from "./engine-fixture";

const DOMAIN = "pll-mv-engine";
const DISK = "moved-data";

describe("engine: a running guest's disk moves to a new source as an update, not a replacement (pll-mv-engine)", function () {
    this.timeout(600_000);
    let env: RigEnv;
    let consumer: Consumer;
    let stack: TestStack;
    let domain: ThrowawayDomain;
    let old = "";
    let dest = "";
    let again = "";

    const programFor = (c: Consumer, source: string, format: "raw" | "qcow2", iotune?: { totalBytesSec: number }): AutomationModule.PulumiFn => async () => {
        const sdk = c.load();
        const disk = new sdk.AttachedDisk(DISK, { connection: rigStackConnection(c, env), domain: DOMAIN, source, format, target: "vdb", ...(iotune ? { iotune } : {}) });
        return { source: disk.source, format: disk.format };
    };

    before(async function () {
        env = rigUp();
        domain = new ThrowawayDomain(env, DOMAIN, GUEST2);
        domain.create();
        old = createImage(env, "engine-move", "raw", "16M");
        execFileSync("qemu-io", ["-f", "raw", "-c", "write -P 0x6b 1M 2M", old], { stdio: "ignore" });
        dest = missingPath(env, "engine-move-dest").replace(/\.img$/, ".qcow2");
        again = missingPath(env, "engine-move-again");
        consumer = await installConsumer();
        stack = await openTestStack(consumer, "pll-move-stack", programFor(consumer, old, "raw"));
    });

    after(async function () {
        if (stack) await stack.remove();
        domain?.remove();
        removeFiles([old, dest, again]);
    });

    it("up: attaches the raw disk", async () => {
        const run = await stack.up();
        assert.deepEqual(changed(run), { [DISK]: "create" });
    });

    it("source → a new qcow2 path: the preview shows an update; up moves the disk with its data; then no changes", async () => {
        stack.setProgram(programFor(consumer, dest, "qcow2"));
        const preview = await stack.preview();
        assert.deepEqual(changed(preview), { [DISK]: "update" }, "a move keeps the disk in the guest: an update, not a replacement");
        const run = await stack.up();
        assert.deepEqual(changed(run), { [DISK]: "update" });
        assert.equal(run.outputs.source.value, dest);
        assert.equal(run.outputs.format.value, "qcow2");
        for (const xml of [liveXml(DOMAIN), configXml(DOMAIN)]) {
            const disk = diskByTarget(xml, "vdb");
            assert.deepEqual([disk?.source, disk?.driverType], [dest, "qcow2"]);
        }
        const read = spawnSync("qemu-io", ["-r", "-U", "-f", "qcow2", "-c", "read -P 0x6b 1M 2M", dest], { encoding: "utf8" });
        assert.ok(read.status === 0 && !/verification failed/.test(read.stdout), `the data moved: ${read.stdout}${read.stderr}`);
        await stack.preview({ expectNoChanges: true });
    });

    it("review finding 10: a move whose next step fails (limits QEMU refuses) fails the up, and the state keeps the move: without the limits, the retry moves nothing", async () => {
        stack.setProgram(programFor(consumer, again, "qcow2", { totalBytesSec: 2e15 }));
        await assert.rejects(stack.up(), (error: Error) => error instanceof EngineRunError && new RegExp(`was moved to ${again} \\(the state now names it\\); then: .*blkdeviotune`).test(error.message));
        const exported = stack.exportPlain();
        const state = JSON.parse(exported) as { deployment: { resources: Array<{ urn: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> }> } };
        const stored = state.deployment.resources.find((r) => r.urn.endsWith(`::${DISK}`));
        assert.deepEqual([stored?.outputs?.source, stored?.outputs?.format], [again, "qcow2"], "the state names where the disk is");
        assert.equal(diskByTarget(liveXml(DOMAIN), "vdb")?.source, again);
        // Review 2, finding 8: the engine keeps the old inputs beside the moved outputs; the preview refuses a format-only
        // change on the moved source against the state (not the old inputs: another source), and nothing changes.
        assert.deepEqual([stored?.inputs?.source, stored?.inputs?.format], [dest, "qcow2"], "the old inputs stay");
        stack.setProgram(programFor(consumer, again, "raw"));
        await assert.rejects(stack.preview(), (error: Error) => error instanceof EngineRunError
            && new RegExp(`qcow2 → raw on the same source ${again} would read the image's bytes as raw; the state names ${again} as qcow2 \\(the last up, an earlier move that failed after its copy, or a refresh\\) \\(host [^,]+, domain '${DOMAIN}', device disk vdb\\)\\s+Fix: keep format "qcow2"`).test(error.message));
        assert.equal(stack.exportPlain(), exported, "the preview changed no state");
        for (const xml of [liveXml(DOMAIN), configXml(DOMAIN)]) assert.deepEqual([diskByTarget(xml, "vdb")?.source, diskByTarget(xml, "vdb")?.driverType], [again, "qcow2"]);
        // The engine retries a resource whose last update failed; from the stored outputs, that is no move, only the limits (none now).
        stack.setProgram(programFor(consumer, again, "qcow2"));
        const retry = await stack.up();
        assert.deepEqual(changed(retry), { [DISK]: "update" });
        assert.equal(retry.outputs.source.value, again);
        assert.deepEqual([diskByTarget(liveXml(DOMAIN), "vdb")?.source, diskByTarget(configXml(DOMAIN), "vdb")?.source], [again, again]);
        await stack.preview({ expectNoChanges: true });
    });
});
