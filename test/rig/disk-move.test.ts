/**
 * Issue 16, moving a disk (throwaway copies of pll-guest2: pll-t16-move running, pll-t16-move-off
 * shut off), through the provider as the engine calls it (check, diff, update). A new source where
 * nothing is yet is an update that copies the data: raw → qcow2 with blockcopy --pivot, the same
 * target, both XMLs on the new file; afterMove "delete" removes the image the disk created; shut
 * off, qemu-img convert and the config; moveOntoExisting onto an image of exactly the disk's size.
 * Refused before any copy: an existing image of another size, a destination on a file system
 * without room, a destination another disk uses. A copy past moveTimeout is aborted. Each failure
 * leaves the guest on the old source and nothing behind.
 * On the code before the move the tests fail (run on it: the other five, before the moveOntoExisting
 * one was added): a new source was a replacement (the diff replaces source and format; the delete
 * detaches the old disk, which this OS-less guest never releases; shut off, the create of a missing
 * source without size fails).
 * The throwaway has no OS, so it never releases a detached disk: the disks stay until after() removes the domain.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { AttachedDiskInputs, AttachedDiskOutputs } from "../../provider/contract";
import { InputError, providers, VirshError } from "../../provider/index";
import { ThrowawayDomain } from "./throwaway-domain";
import {
    configXml, createImage, diskByTarget, GUEST2, liveXml, missingPath, rejectsWith, removeFiles, RigEnv, rigConnection, rigUp, typed, virshLocalResult,
} from "./rig-env";

const DOMAIN = "pll-t16-move";
const MiB = 1024 * 1024;
/** The pattern: 0x5c over 4 MiB from 1 MiB, written into the raw image before it is attached. */
const PATTERN = { byte: "0x5c", offset: MiB, length: 4 * MiB };

function writePattern(path: string): void {
    execFileSync("qemu-io", ["-f", "raw", "-c", `write -P ${PATTERN.byte} ${PATTERN.offset} ${PATTERN.length}`, path], { stdio: "ignore" });
}

/** qemu-io reads the pattern back from the image, as `format`, without taking its lock. */
function holdsPattern(path: string, format: "raw" | "qcow2"): boolean {
    const read = spawnSync("qemu-io", ["-r", "-U", "-f", format, "-c", `read -P ${PATTERN.byte} ${PATTERN.offset} ${PATTERN.length}`, path], { encoding: "utf8" });
    return read.status === 0 && !/Pattern verification failed/.test(read.stdout + read.stderr);
}

function fillRandom(path: string, mib: number): void {
    execFileSync("dd", ["if=/dev/urandom", `of=${path}`, "bs=1M", `count=${mib}`, "conv=notrunc", "status=none"]);
}

/** Where both halves of the domain have the disk: source and format in the live XML and in the config. */
function placeOf(target: string): { live?: string; config?: string; liveFormat?: string; configFormat?: string } {
    const [live, config] = [diskByTarget(liveXml(DOMAIN), target), diskByTarget(configXml(DOMAIN), target)];
    return { live: live?.source, config: config?.source, liveFormat: live?.driverType, configFormat: config?.driverType };
}

describe("rig: an AttachedDisk moves live to a new source (pll-t16-move, a copy of pll-guest2)", function () {
    this.timeout(300_000);
    const provider = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    let env: RigEnv;
    const domain = () => new ThrowawayDomain(env, DOMAIN, GUEST2);
    const files: string[] = [];
    const disk = (source: string, fields: Partial<AttachedDiskInputs> = {}): AttachedDiskInputs =>
        ({ connection: rigConnection(env), domain: DOMAIN, source, ...fields });
    const image = (label: string, mib: number): string => {
        const path = createImage(env, `move-${label}`, "raw", `${mib}M`);
        files.push(path);
        return path;
    };
    const nowhere = (label: string, ext = "img"): string => {
        const path = missingPath(env, `move-${label}`).replace(/\.img$/, `.${ext}`);
        files.push(path);
        return path;
    };

    before(function () {
        env = rigUp();
        domain().create();
    });

    after(function () {
        domain().remove();
        removeFiles(files);
    });

    it("raw → qcow2 while the guest runs: an update, the same target, both XMLs on the new file, the data in it; afterMove delete removes only its own image", async function () {
        const old = image("raw", 32);
        writePattern(old);
        const created = await provider.create(disk(old));
        const target = created.outs.target;
        const dest = nowhere("qcow2", "qcow2");
        const diff = await provider.diff(created.id, created.outs, disk(dest, { format: "qcow2" }));
        assert.deepEqual(diff.replaces, [], "a move must not be a replacement");
        const moved = await provider.apply(created.id, created.outs, disk(dest, { format: "qcow2" }));
        assert.equal(moved.replaced, false);
        assert.deepEqual(placeOf(target), { live: dest, config: dest, liveFormat: "qcow2", configFormat: "qcow2" });
        assert.equal(moved.outs.target, target);
        assert.equal(moved.outs.format, "qcow2");
        assert.equal(moved.outs.imageCreated, true, "the copy created the destination: this disk owns it");
        assert.ok(holdsPattern(dest, "qcow2"), "the new image holds the data written before the move");
        assert.ok(holdsPattern(old, "raw"), "afterMove keep (the default): the old image is untouched");

        // Back to raw, deleting the qcow2 this disk created.
        const again = nowhere("raw-again");
        const back = await provider.apply(moved.id, moved.outs, disk(again, { afterMove: "delete" }));
        assert.equal(back.replaced, false);
        assert.deepEqual(placeOf(target), { live: again, config: again, liveFormat: "raw", configFormat: "raw" });
        assert.ok(!existsSync(dest), "afterMove delete removed the image the disk created");
        assert.ok(holdsPattern(again, "raw"));
    });

    it("shut off: qemu-img convert to the new path, then the config names it (an update, the same target, the data in it)", async function () {
        const off = new ThrowawayDomain(env, `${DOMAIN}-off`, GUEST2);
        off.create(false);
        try {
            const old = image("off", 16);
            writePattern(old);
            const created = await provider.create({ ...disk(old), domain: off.name });
            const dest = nowhere("off-dest", "qcow2");
            const moved = await provider.apply(created.id, created.outs, { ...disk(dest, { format: "qcow2" }), domain: off.name });
            assert.equal(moved.replaced, false);
            const config = diskByTarget(configXml(off.name), created.outs.target);
            assert.deepEqual([config?.source, config?.driverType], [dest, "qcow2"]);
            assert.ok(holdsPattern(dest, "qcow2"), "the converted image holds the data");
            assert.ok(holdsPattern(old, "raw"), "the old image is kept");
        } finally {
            off.remove();
        }
    });

    it("a destination on a file system without room for the data is refused before the copy: the guest stays on the old source, nothing is written there", async function () {
        const mount = join(env.PLL_RIG_DIR, "t16-small");
        mkdirSync(mount, { recursive: true });
        execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m", "pll-t16", mount]);
        try {
            const old = image("full", 16);
            fillRandom(old, 16);
            const created = await provider.create(disk(old));
            const dest = join(mount, "moved.img");
            const error = await rejectsWith(provider.apply(created.id, created.outs, disk(dest)), InputError, [/has 4 ?MiB free, and the copy of .* needs 16 ?MiB/, /nothing was copied/]);
            assert.match(error.message, /Fix: free space there/);
            assert.deepEqual(placeOf(created.outs.target), { live: old, config: old, liveFormat: "raw", configFormat: "raw" });
            assert.ok(!existsSync(dest), "nothing was left at the destination");
        } finally {
            execFileSync("umount", [mount]);
            rmSync(mount, { recursive: true, force: true });
        }
    });

    it("moveOntoExisting: an existing image of another size is refused with the fix; one of exactly the disk's size takes the copy", async function () {
        const old = image("onto", 16);
        writePattern(old);
        const created = await provider.create(disk(old));
        const [bigger, exact] = [image("onto-32", 32), image("onto-16", 16)];
        const error = await rejectsWith(provider.apply(created.id, created.outs, disk(bigger, { moveOntoExisting: true })), InputError,
            [/holds 32 ?MiB, and disk vd\w+ is 16 ?MiB: a copy onto an existing image needs exactly the disk's size; nothing was copied/]);
        assert.match(error.message, /Fix: grow the disk to 32 ?MiB first/);
        assert.deepEqual(placeOf(created.outs.target), { live: old, config: old, liveFormat: "raw", configFormat: "raw" });
        const moved = await provider.apply(created.id, created.outs, disk(exact, { moveOntoExisting: true }));
        assert.equal(moved.replaced, false);
        assert.deepEqual(placeOf(created.outs.target), { live: exact, config: exact, liveFormat: "raw", configFormat: "raw" });
        assert.ok(holdsPattern(exact, "raw"), "the copy went onto the existing image");
        assert.equal(moved.outs.imageCreated, false, "an image the move did not create is not this disk's to delete");
    });

    it("a destination that is another disk (moveOntoExisting) is refused: neither disk changes", async function () {
        const [mine, other] = [image("mine", 16), image("other", 16)];
        writePattern(other);
        const created = await provider.create(disk(mine));
        const second = await provider.create(disk(other));
        const error = await rejectsWith(provider.apply(created.id, created.outs, disk(other, { moveOntoExisting: true })), InputError,
            [new RegExp(`already a disk of domain '${DOMAIN}'`), /nothing was copied/]);
        assert.match(error.message, /Fix: pick a path no domain uses/);
        assert.deepEqual(placeOf(created.outs.target), { live: mine, config: mine, liveFormat: "raw", configFormat: "raw" });
        assert.deepEqual(placeOf(second.outs.target), { live: other, config: other, liveFormat: "raw", configFormat: "raw" });
        assert.ok(holdsPattern(other, "raw"), "the other disk's data is untouched");
    });

    it("a copy past moveTimeout (copyBandwidth 1) is aborted: the guest stays on the old source, no block job, the partial copy removed; progress was logged", async function () {
        const old = image("slow", 128);
        fillRandom(old, 128);
        const created = await provider.create(disk(old));
        const target = created.outs.target;
        const dest = nowhere("slow-dest", "qcow2");
        const said: string[] = [];
        const [log, err] = [console.log, console.error];
        console.log = console.error = (...args: unknown[]) => { said.push(args.map(String).join(" ")); };
        let error: VirshError;
        try {
            error = await rejectsWith(provider.apply(created.id, created.outs, disk(dest, { format: "qcow2", moveTimeout: 8, copyBandwidth: 1 })), VirshError,
                [/did not finish within moveTimeout \(8 s\) and was aborted/, new RegExp(`stays on ${old}, untouched`), /the partial copy .* was removed/]);
        } finally {
            [console.log, console.error] = [log, err];
        }
        assert.match(error.message, /Fix: raise moveTimeout/);
        assert.deepEqual(placeOf(target), { live: old, config: old, liveFormat: "raw", configFormat: "raw" });
        assert.match(virshLocalResult(["blockjob", DOMAIN, target, "--info"]).stdout + virshLocalResult(["blockjob", DOMAIN, target, "--info"]).stderr, /No current block job/);
        assert.ok(!existsSync(dest), "the partial destination is gone");
        assert.ok(said.some((line) => /copying to .*: \d+ % \(\d+\.\d of 128\.0 MiB, [\d.]+ MiB\/s\)/.test(line)), `a progress line in the log; it said: ${said.join(" | ")}`);
    });
});
