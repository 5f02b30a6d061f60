/**
 * Issue 16, moving a disk (throwaway copies of pll-guest2: pll-mv-move running, pll-mv-move-off
 * shut off), through the provider as the engine calls it (check, diff, update). A new source where
 * nothing is yet is an update that copies the data: raw → qcow2 with blockcopy --pivot, the same
 * target, both XMLs on the new file; afterMove "delete" removes the image the disk created; shut
 * off, qemu-img convert and the config; moveOntoExisting onto an image of exactly the disk's size.
 * A loop block device of exactly the disk's size takes the copy (moveOntoExisting, sourceType block).
 * Refused before any copy: an existing image or device of another size, a destination on a file system
 * without room, a destination another disk uses. A copy past moveTimeout is aborted; a copy whose
 * answer is lost (this suite's own sshd on 2234, killed) is read back and undone. Each failure
 * leaves the guest on the old source and nothing behind.
 * On the code before the move the tests fail (run on it: the other five, before the moveOntoExisting
 * one was added): a new source was a replacement (the diff replaces source and format; the delete
 * detaches the old disk, which this OS-less guest never releases; shut off, the create of a missing
 * source without size fails).
 * The throwaway has no OS, so it never releases a detached disk: the disks stay until after() removes the domain.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, readlinkSync, rmSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import type { AttachedDiskInputs, AttachedDiskOutputs } from "../../provider/contract";
import { InputError, VirshError } from "../../provider/index";
import { fillRandom, holdsPattern, MoveFixture, on, withLog, writePattern } from "./disk-move-env";
import { ThrowawayDomain } from "./throwaway-domain";
import {
    configXml, diskByTarget, GUEST2, liveXml, rejectsWith, RigEnv, virshLocal, virshLocalResult, waitFor,
} from "./rig-env";
import { withWarnings } from "./grow-env";
import { FaultSshd, sleep } from "../faults/fault-env";

const DOMAIN = "pll-mv-move";
/** This suite's own sshd (killed by one test), in lane main. */
const LOST_ANSWER_PORT = 2234;

describe("rig: an AttachedDisk moves live to a new source (pll-mv-move, a copy of pll-guest2)", function () {
    this.timeout(300_000);
    const kit = new MoveFixture(DOMAIN);
    const { provider } = kit;
    let env: RigEnv;

    before(function () {
        kit.setUp();
        env = kit.env;
    });

    after(function () {
        kit.tearDown();
    });

    /**
     * A disk of 32 MiB of random data (the pattern at 1 MiB) attached through this suite's own sshd,
     * which a test may kill, and its move to a new qcow2 path; the sshd stopped after.
     */
    async function throughOwnSshd(label: string, moveFields: Partial<AttachedDiskInputs>,
        test: (moving: { sshd: FaultSshd; old: string; created: { id: string; outs: AttachedDiskOutputs }; target: string; dest: string; move: AttachedDiskInputs }) => Promise<void>): Promise<void> {
        const sshd = new FaultSshd(env, LOST_ANSWER_PORT);
        sshd.start();
        try {
            const connection = sshd.connection();
            const old = kit.image(label, 32);
            fillRandom(old, 32);
            writePattern(old);
            const created = await provider.create({ ...kit.disk(old), connection });
            const dest = kit.nowhere(`${label}-dest`, "qcow2");
            await test({ sshd, old, created, target: created.outs.target, dest, move: { ...kit.disk(dest, { format: "qcow2", ...moveFields }), connection } });
        } finally {
            sshd.stop();
        }
    }

    it("raw → qcow2 while the guest runs: an update, the same target, both XMLs on the new file, the data in it; afterMove delete removes only its own image", async function () {
        const old = kit.image("raw", 32);
        writePattern(old);
        const created = await provider.create(kit.disk(old));
        const target = created.outs.target;
        const dest = kit.nowhere("qcow2", "qcow2");
        const diff = await provider.diff(created.id, created.outs, kit.disk(dest, { format: "qcow2" }));
        assert.deepEqual(diff.replaces, [], "a move must not be a replacement");
        const moved = await provider.apply(created.id, created.outs, kit.disk(dest, { format: "qcow2" }));
        assert.equal(moved.replaced, false);
        assert.deepEqual(kit.place(target), on(dest, "qcow2"));
        assert.equal(moved.outs.target, target);
        assert.equal(moved.outs.format, "qcow2");
        assert.equal(moved.outs.imageCreated, true, "the copy created the destination: this disk owns it");
        assert.ok(holdsPattern(dest, "qcow2"), "the new image holds the data written before the move");
        assert.ok(holdsPattern(old, "raw"), "afterMove keep (the default): the old image is untouched");

        // Back to raw, deleting the qcow2 this disk created.
        const again = kit.nowhere("raw-again");
        const back = await provider.apply(moved.id, moved.outs, kit.disk(again, { afterMove: "delete" }));
        assert.equal(back.replaced, false);
        assert.deepEqual(kit.place(target), on(again));
        assert.ok(!existsSync(dest), "afterMove delete removed the image the disk created");
        assert.ok(holdsPattern(again, "raw"));
    });

    it("shut off: qemu-img convert to the new path (copyBandwidth its -r, the new file's growth as progress), then the config names it (an update, the same target, the data in it)", async function () {
        const off = new ThrowawayDomain(env, `${DOMAIN}-off`, GUEST2);
        off.create(false);
        try {
            const old = kit.image("off", 16);
            writePattern(old);
            // 4 MiB more (8 MiB of data): at 1 MiB/s the convert runs past the first progress read (5 s).
            execFileSync("qemu-io", ["-f", "raw", "-c", `write -P 0x33 ${8 * 1024 * 1024} ${4 * 1024 * 1024}`, old], { stdio: "ignore" });
            const created = await provider.create({ ...kit.disk(old), domain: off.name });
            const dest = kit.nowhere("off-dest", "qcow2");
            const { result: moved, said } = await withLog(() => provider.apply(created.id, created.outs, { ...kit.disk(dest, { format: "qcow2", copyBandwidth: 1 }), domain: off.name }));
            assert.ok(said.some((line) => /copying to .*: \d+ % \(\d+\.\d of \d+\.\d MiB written, [\d.]+ MiB\/s\)/.test(line)), `a progress line in the log; it said: ${said.join(" | ")}`);
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
        const mount = join(env.PLL_RIG_DIR, "mv-small");
        mkdirSync(mount, { recursive: true });
        execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m", "pll-mv", mount]);
        try {
            const old = kit.image("full", 16);
            fillRandom(old, 16);
            const created = await provider.create(kit.disk(old));
            const dest = join(mount, "moved.img");
            const error = await rejectsWith(provider.apply(created.id, created.outs, kit.disk(dest)), InputError, [/has 4 ?MiB free, and the copy of .* needs 17 ?MiB/, /nothing was copied/]);
            assert.match(error.message, /Fix: free space there/);
            assert.deepEqual(kit.place(created.outs.target), on(old));
            assert.ok(!existsSync(dest), "nothing was left at the destination");
        } finally {
            execFileSync("umount", [mount]);
            rmSync(mount, { recursive: true, force: true });
        }
    });

    it("review finding 8: a new path under /dev (devtmpfs) is refused before the copy (an image file there lives in RAM): nothing is created there", async function () {
        const old = kit.image("to-dev", 16);
        const created = await provider.create(kit.disk(old));
        const dest = `/dev/pll-mv-${process.pid}.img`;
        try {
            await rejectsWith(provider.apply(created.id, created.outs, kit.disk(dest)), InputError, [/its directory is on devtmpfs \(\/dev\)/, /nothing was copied/]);
            assert.ok(!existsSync(dest), "nothing was created under /dev");
            assert.deepEqual(kit.place(created.outs.target), on(old));
        } finally {
            rmSync(dest, { force: true });
        }
    });

    it("review finding 7: the room check counts the whole backing chain (the copy flattens it): an overlay on a full base is refused before the copy", async function () {
        const mount = join(env.PLL_RIG_DIR, "mv-chain");
        mkdirSync(mount, { recursive: true });
        execFileSync("mount", ["-t", "tmpfs", "-o", "size=8m", "pll-mv", mount]);
        try {
            const base = kit.image("chain-base", 16);
            fillRandom(base, 16);
            const overlay = kit.nowhere("chain-top", "qcow2");
            execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", overlay]);
            const created = await provider.create(kit.disk(overlay, { format: "qcow2" }));
            const dest = join(mount, "moved.img");
            await rejectsWith(provider.apply(created.id, created.outs, kit.disk(dest)), InputError, [/has 8 ?MiB free, and the copy of .* needs \d+ ?[KM]iB;/, /nothing was copied/]);
            assert.deepEqual(kit.place(created.outs.target), on(overlay, "qcow2"));
            assert.ok(!existsSync(dest), "nothing was left at the destination");
        } finally {
            execFileSync("umount", [mount]);
            rmSync(mount, { recursive: true, force: true });
        }
    });

    it("moveOntoExisting: an existing image of another size is refused with the fix; one of exactly the disk's size takes the copy", async function () {
        const old = kit.image("onto", 16);
        writePattern(old);
        const created = await provider.create(kit.disk(old));
        const [bigger, exact] = [kit.image("onto-32", 32), kit.image("onto-16", 16)];
        const error = await rejectsWith(provider.apply(created.id, created.outs, kit.disk(bigger, { moveOntoExisting: true })), InputError,
            [/holds 32 ?MiB, and disk vd\w+ is 16 ?MiB: a copy onto an existing image needs exactly the disk's size; nothing was copied/]);
        assert.match(error.message, /Fix: grow the disk to 32 ?MiB first/);
        assert.deepEqual(kit.place(created.outs.target), on(old));
        const moved = await provider.apply(created.id, created.outs, kit.disk(exact, { moveOntoExisting: true }));
        assert.equal(moved.replaced, false);
        assert.deepEqual(kit.place(created.outs.target), on(exact));
        assert.ok(holdsPattern(exact, "raw"), "the copy went onto the existing image");
        assert.equal(moved.outs.imageCreated, false, "an image the move did not create is not this disk's to delete");
    });

    it("onto a loop block device (moveOntoExisting): a bigger one is refused with the fix; one of exactly the disk's size takes the copy live (sourceType block)", async function () {
        const old = kit.image("to-loop", 16);
        writePattern(old);
        const created = await provider.create(kit.disk(old));
        const target = created.outs.target;
        const [bigger, exact] = [kit.loop("loop-32", 32), kit.loop("loop-16", 16)];
        const onto = (dev: string) => kit.disk(dev, { sourceType: "block", moveOntoExisting: true });
        assert.deepEqual((await provider.diff(created.id, created.outs, onto(exact))).replaces, [], "a move onto the device is an update");
        const error = await rejectsWith(provider.apply(created.id, created.outs, onto(bigger)), InputError,
            [new RegExp(`source ${bigger} holds 32 ?MiB, and disk ${target} is 16 ?MiB: a copy onto an existing device needs exactly the disk's size; nothing was copied`)]);
        assert.match(error.message, /Fix: grow the disk to 32 ?MiB first \(size: "33554432B", its own pulumi up\), then move; or make the device 16 ?MiB \(lvcreate -L 16777216B\)/);
        assert.deepEqual(kit.place(target), on(old));
        const moved = await provider.apply(created.id, created.outs, onto(exact));
        assert.equal(moved.replaced, false);
        assert.deepEqual(kit.place(target), on(exact));
        assert.equal(diskByTarget(liveXml(DOMAIN), target)?.type, "block", "the live XML has a block disk");
        assert.deepEqual([moved.outs.sourceType, moved.outs.imageCreated], ["block", false]);
        assert.ok(holdsPattern(exact, "raw"), "the device holds the data");
        assert.ok(holdsPattern(old, "raw"), "the old image is kept");
    });

    it("a destination that is another disk (moveOntoExisting) is refused: neither disk changes", async function () {
        const [mine, other] = [kit.image("mine", 16), kit.image("other", 16)];
        writePattern(other);
        const created = await provider.create(kit.disk(mine));
        const second = await provider.create(kit.disk(other));
        const error = await rejectsWith(provider.apply(created.id, created.outs, kit.disk(other, { moveOntoExisting: true })), InputError,
            [new RegExp(`already in use by domain '${DOMAIN}'`), /nothing was copied/]);
        assert.match(error.message, /Fix: pick a path no domain uses/);
        assert.deepEqual(kit.place(created.outs.target), on(mine));
        assert.deepEqual(kit.place(second.outs.target), on(other));
        assert.ok(holdsPattern(other, "raw"), "the other disk's data is untouched");
    });

    it("review finding 1: a dangling symbolic link at the destination (stat -L finds nothing: a move) is refused by the exclusive create and left as it is; the guest stays on the old source", async function () {
        const old = kit.image("link", 16);
        writePattern(old);
        const created = await provider.create(kit.disk(old));
        const dest = kit.nowhere("link-dest");
        symlinkSync(`${dest}.missing-target`, dest);
        try {
            await rejectsWith(provider.apply(created.id, created.outs, kit.disk(dest)), InputError,
                [/exists on the host now \(a file, a device, a FIFO or a symbolic link\)/, /nothing was copied, and it was left as it is/]);
            assert.ok(lstatSync(dest).isSymbolicLink(), "the link someone else made is still there");
            assert.deepEqual(kit.place(created.outs.target), on(old));
        } finally {
            rmSync(dest, { force: true });
        }
    });

    it("review 2, finding 1: an image with qcow2 internal snapshots (which the copy does not carry) is refused before anything runs, with the fix", async function () {
        const old = kit.nowhere("snap-old", "qcow2");
        execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", old, "16M"]);
        execFileSync("qemu-img", ["snapshot", "-c", "base", old]);
        const created = await provider.create(kit.disk(old, { format: "qcow2" }));
        const dest = kit.nowhere("snap-dest", "qcow2");
        await rejectsWith(provider.apply(created.id, created.outs, kit.disk(dest, { format: "qcow2" })), InputError,
            [new RegExp(`domain '${DOMAIN}' cannot move from ${old} to ${dest}`), /qcow2 internal snapshots \(base\)/, /nothing was copied/, /qemu-img snapshot -d/]);
        assert.ok(!existsSync(dest), "nothing was created at the destination");
        assert.deepEqual(kit.place(created.outs.target), on(old, "qcow2"));
    });

    it("review 2, finding 1: a domain saved with virsh managedsave (it reads shut off) is refused before anything runs: its next start would restore the old source", async function () {
        const saved = new ThrowawayDomain(env, `${DOMAIN}-saved`, GUEST2);
        saved.create();
        try {
            const old = kit.image("saved", 16);
            const created = await provider.create({ ...kit.disk(old), domain: saved.name });
            virshLocal(["managedsave", saved.name]);
            const dest = kit.nowhere("saved-dest");
            await rejectsWith(provider.apply(created.id, created.outs, { ...kit.disk(dest), domain: saved.name }), InputError,
                [/has a managed save/, /managedsave-remove/, /nothing was copied/]);
            assert.ok(!existsSync(dest), "nothing was created at the destination");
            assert.equal(diskByTarget(configXml(saved.name), created.outs.target)?.source, old);
        } finally {
            virshLocalResult(["managedsave-remove", saved.name]);
            saved.remove();
        }
    });

    it("review 2, finding 3: a symbolic link to /dev/null made at the destination after the diff is refused: nothing written through it, the link untouched", async function () {
        const old = kit.image("devlink", 16);
        writePattern(old);
        const created = await provider.create(kit.disk(old));
        const dest = kit.nowhere("devlink-dest");
        const diff = await provider.diff(created.id, created.outs, kit.disk(dest));
        assert.deepEqual(diff.replaces, [], "nothing at the destination yet: the diff shows a move");
        symlinkSync("/dev/null", dest);
        try {
            await rejectsWith(provider.update(created.id, created.outs, kit.disk(dest)), InputError, [new RegExp(`${dest} exists now`)]);
            assert.equal(readlinkSync(dest), "/dev/null", "the link is left as it is");
            assert.ok(statSync("/dev/null").isCharacterDevice());
            assert.deepEqual(kit.place(created.outs.target), on(old));
        } finally {
            rmSync(dest, { force: true });
        }
    });

    it("review finding 4: a file made at the destination after the diff showed a move is refused by the update (never an unpreviewed swap): nothing changes, the file is left", async function () {
        const old = kit.image("appeared", 16);
        writePattern(old);
        const created = await provider.create(kit.disk(old));
        const dest = kit.nowhere("appeared-dest");
        const diff = await provider.diff(created.id, created.outs, kit.disk(dest));
        assert.deepEqual(diff.replaces, [], "nothing at the destination yet: the diff shows a move");
        execFileSync("qemu-img", ["create", "-q", "-f", "raw", dest, "16M"]);
        const identity = `${statSync(dest).dev}:${statSync(dest).ino}`;
        const error = await rejectsWith(provider.update(created.id, created.outs, kit.disk(dest)), InputError,
            [new RegExp(`the preview found nothing at ${dest}, so it showed a move`), /Nothing was changed/, new RegExp(`domain '?${DOMAIN}`), /disk vd/]);
        assert.match(error.message, new RegExp(`Fix: remove ${dest} if nothing needs it.*or set moveOntoExisting: true`));
        assert.deepEqual(kit.place(created.outs.target), on(old));
        assert.equal(`${statSync(dest).dev}:${statSync(dest).ino}`, identity, "the file made meanwhile is left as it is");
        assert.ok(holdsPattern(old, "raw"));
    });

    it("review finding 5: a symbolic link naming another disk's file (moveOntoExisting) is refused by the file it names, not the path: neither disk changes", async function () {
        const [mine, other] = [kit.image("mine-link", 16), kit.image("other-link", 16)];
        writePattern(other);
        const created = await provider.create(kit.disk(mine));
        const second = await provider.create(kit.disk(other));
        const link = kit.nowhere("other-link-alias");
        symlinkSync(other, link);
        await rejectsWith(provider.apply(created.id, created.outs, kit.disk(link, { moveOntoExisting: true })), InputError,
            [new RegExp(`already in use by domain '${DOMAIN}'`), /nothing was copied/]);
        assert.deepEqual(kit.place(created.outs.target), on(mine));
        assert.deepEqual(kit.place(second.outs.target), on(other));
        assert.ok(holdsPattern(other, "raw"), "the other disk's data is untouched");
    });

    it("review 3, finding 2: a symbolic link to the attached raw image with format qcow2 is refused by the diff (the same file: its swap would re-plug the image read as qcow2); the same format through it stays a swap; nothing changes", async function () {
        const old = kit.image("alias", 16);
        writePattern(old);
        const created = await provider.create(kit.disk(old));
        const link = kit.nowhere("alias-link");
        symlinkSync(old, link);
        const error = await rejectsWith(provider.apply(created.id, created.outs, kit.disk(link, { format: "qcow2" })), InputError,
            [new RegExp(`raw → qcow2 on source ${link}, the same file as ${old}, would read the image's bytes as qcow2; the state names ${old} as raw`), /\(host [^,]+, domain 'pll-mv-move', device disk vd/]);
        assert.match(error.message, new RegExp(`Fix: keep format "raw" and source ${old}, or convert a copy`));
        const same = await provider.diff(created.id, created.outs, kit.disk(link));
        assert.ok(same.replaces?.includes("source"), "the same format through another name: a swap, as before");
        assert.deepEqual(kit.place(created.outs.target), on(old));
        assert.equal(readlinkSync(link), old);
        assert.ok(holdsPattern(old, "raw"), "the image is untouched");
    });

    it("review finding 5: a file a block copy writes to (the job's <mirror>, in no domblklist) is in use: a move onto it is refused; the job and both disks untouched", async function () {
        const [mine, other] = [kit.image("mirror-mine", 16), kit.image("mirror-other", 16)];
        const created = await provider.create(kit.disk(mine));
        const second = await provider.create(kit.disk(other));
        const copy = kit.image("mirror-dest", 16);
        virshLocal(["blockcopy", DOMAIN, second.outs.target, "--dest", copy, "--format", "raw", "--reuse-external", "--transient-job"]);
        try {
            await rejectsWith(provider.apply(created.id, created.outs, kit.disk(copy, { moveOntoExisting: true })), InputError,
                [new RegExp(`${copy} is already in use by domain '${DOMAIN}' \\(a disk's source, an overlay's backing file or a block copy's destination\\)`), /nothing was copied/]);
            assert.deepEqual(kit.place(created.outs.target), on(mine));
            assert.match(virshLocal(["dumpxml", DOMAIN]), new RegExp(`<mirror [^>]*file='${copy}'`), "the other disk's copy still runs");
        } finally {
            virshLocal(["blockjob", DOMAIN, second.outs.target, "--abort"]);
        }
        assert.deepEqual(kit.place(second.outs.target), on(other));
    });

    it("review finding 5: afterMove delete keeps the old image while overlays have it as their backing file: a running domain's (its live <backingStore>) and a shut-off one's (qemu-img: libvirt lists no chain then)", async function () {
        // The disk moves on a shut-off domain: a running overlay reads its base only while no QEMU writes it.
        const [moving, running, off] = [`${DOMAIN}-based`, `${DOMAIN}-base-run`, `${DOMAIN}-base-off`].map((name) => new ThrowawayDomain(env, name, GUEST2));
        moving.create(false);
        try {
            const old = kit.nowhere("based");
            const created = await provider.create({ ...kit.disk(old, { size: "16MiB" }), domain: moving.name });
            assert.equal(created.outs.imageCreated, true);
            for (const [domain, start] of [[off, false], [running, true]] as const) {
                const overlay = kit.nowhere(`${domain.name}-top`, "qcow2");
                execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-u", "-b", old, "-F", "raw", overlay, "16M"]);
                domain.create(false);
                virshLocal(["attach-disk", domain.name, overlay, "vdy", "--driver", "qemu", "--subdriver", "qcow2", "--config"]);
                if (start) virshLocal(["start", domain.name]);
            }
            assert.match(virshLocal(["dumpxml", running.name]), new RegExp(`<backingStore type='file'[^]*?<source file='${old}'`), "libvirt lists the running overlay's base");
            const dest = kit.nowhere("based-dest");
            const { warnings } = await withWarnings(() => provider.apply(created.id, created.outs, { ...kit.disk(dest, { size: "16MiB", afterMove: "delete" }), domain: moving.name }));
            assert.deepEqual(diskByTarget(configXml(moving.name), created.outs.target)?.source, dest);
            assert.ok(existsSync(old), "the base of the overlays is kept");
            assert.ok(warnings.some((w) => w.includes(`kept ${old}`) && w.includes(`'${running.name}'`) && w.includes(`'${off.name}'`)), `a warning naming both overlays' domains, got: ${warnings.join(" | ")}`);
        } finally {
            for (const domain of [running, off, moving]) domain.remove();
        }
    });

    it("review 2, finding 5: the copy's answer lost (sshd killed) after the copy failed: the destination the move made is removed, so the next diff shows a move again, never a swap to a partial copy", async function () {
        await throughOwnSshd("lost", { moveTimeout: 2, copyBandwidth: 1 }, async ({ sshd, old, created, target, dest, move }) => {
            // virsh aborts the copy at its --timeout; the double then holds its answer while sshd dies.
            sshd.rule("blockcopy", "after", "5");
            const moving = rejectsWith(provider.apply(created.id, created.outs, move), VirshError,
                [/the connection dropped while the copy ran, and the host shows the copy did not complete/, new RegExp(`stays on ${old}, untouched`), /the partial copy .* was removed/, /Fix: run pulumi up again: the move starts over/]);
            await waitFor("the copy to end on the host", () => sshd.calls().some((c) => c.startsWith("blockcopy ran ")), { timeoutMs: 60_000 });
            assert.ok(existsSync(dest), "the copy had made the destination");
            sshd.kill();
            sshd.clearRules();
            await sleep(1000);
            sshd.restart();
            await moving;
            assert.deepEqual(kit.place(target), on(old));
            assert.ok(!existsSync(dest), "the destination the move made is gone");
            const again = await provider.diff(created.id, created.outs, move);
            assert.deepEqual([again.changes, again.replaces ?? []], [true, []], "the next preview: a move (an update), not a replacement");
        });
    });

    it("review 3, finding 5: sshd killed while a live copy runs: its virsh dies with the connection, the copy turns ready with no one to pivot it, the provider pivots it: moved, with the data", async function () {
        // A bound far past this test's own timeout: had the provider waited it out, the test would time out.
        await throughOwnSshd("cut", { moveTimeout: 900, copyBandwidth: 4 }, async ({ sshd, created, target, dest, move }) => {
            const moving = withLog(() => provider.apply(created.id, created.outs, move));
            await waitFor("the copy to run", () => /cur=[1-9]/.test(virshLocalResult(["blockjob", DOMAIN, target, "--raw"]).stdout), { timeoutMs: 60_000, intervalMs: 200 });
            sshd.kill();
            await sleep(1000);
            sshd.restart();
            const { result, said } = await moving;
            assert.deepEqual(kit.place(target), on(dest, "qcow2"));
            assert.equal(result.outs.source, dest);
            assert.ok(holdsPattern(dest, "qcow2"), "the new image holds the data");
            assert.ok(said.some((line) => /the copy stays ready with no one to pivot it: pivoting it/.test(line)), `the provider pivoted it; the log said: ${said.join(" | ")}`);
            assert.match(virshLocalResult(["blockjob", DOMAIN, target, "--info"]).stdout + virshLocalResult(["blockjob", DOMAIN, target, "--info"]).stderr, /No current block job/);
        });
    });

    it("a copy past moveTimeout (copyBandwidth 1) is aborted: the guest stays on the old source, no block job, the partial copy removed; progress was logged", async function () {
        const old = kit.image("slow", 128);
        fillRandom(old, 128);
        const created = await provider.create(kit.disk(old));
        const target = created.outs.target;
        const dest = kit.nowhere("slow-dest", "qcow2");
        const { result: error, said } = await withLog(() => rejectsWith(provider.apply(created.id, created.outs, kit.disk(dest, { format: "qcow2", moveTimeout: 8, copyBandwidth: 1 })), VirshError,
            [/did not finish within moveTimeout \(8 s\) and was aborted/, new RegExp(`stays on ${old}, untouched`), /the partial copy .* was removed/]));
        assert.match(error.message, /Fix: raise moveTimeout/);
        assert.deepEqual(kit.place(target), on(old));
        assert.match(virshLocalResult(["blockjob", DOMAIN, target, "--info"]).stdout + virshLocalResult(["blockjob", DOMAIN, target, "--info"]).stderr, /No current block job/);
        assert.ok(!existsSync(dest), "the partial destination is gone");
        assert.ok(said.some((line) => /copying to .*: \d+ % \(\d+\.\d of 128\.0 MiB, [\d.]+ MiB\/s\)/.test(line)), `a progress line in the log; it said: ${said.join(" | ")}`);
    });
});
