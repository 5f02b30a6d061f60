/**
 * Issue 16, a move made by hand is drift (a throwaway copy of pll-guest2 without an OS,
 * pll-mv-hand): after the test's own `virsh blockcopy --transient-job --pivot`, refresh reports
 * the new source; the diff shows the change back (a swap to the old file, which would lose what was
 * written since, is a replacement; with moveOntoExisting it is a move); up moves the disk back live,
 * with the data it has now, and then nothing is left to change.
 */
import assert from "node:assert/strict";
import { holdsPattern, MoveFixture, on, writePattern } from "./disk-move-env";
import { virshLocal } from "./rig-env";

const DOMAIN = "pll-mv-hand";

describe("rig: a disk moved by hand (virsh blockcopy --pivot) is drift that up moves back live (pll-mv-hand)", function () {
    this.timeout(300_000);
    const kit = new MoveFixture(DOMAIN).hooks();
    const { provider } = kit;

    it("refresh reports the new source; the diff shows it back; up moves it back onto the old image with the data", async () => {
        const old = kit.image("hand", 16);
        writePattern(old);
        const inputs = kit.disk(old, { moveOntoExisting: true });
        const created = await provider.create(inputs);
        const target = created.outs.target;
        const elsewhere = kit.nowhere("hand-dest");
        virshLocal(["blockcopy", DOMAIN, target, "--dest", elsewhere, "--format", "raw", "--transient-job", "--pivot", "--wait"]);
        assert.deepEqual(kit.place(target), on(elsewhere), "the hand move happened");
        // The old image, now free, loses the pattern: only a copy back can bring the data there.
        writePattern(old, "0x00");

        const read = await provider.read(created.id, created.outs);
        assert.ok(read.props);
        assert.equal(read.props.source, elsewhere, "refresh reports where the disk is");
        assert.deepEqual((await provider.diff(created.id, read.props, kit.disk(old))).replaces, ["source"],
            "without moveOntoExisting, back to the existing old file is a swap (a replacement)");
        const diff = await provider.diff(created.id, read.props, inputs);
        assert.deepEqual([diff.changes, diff.replaces], [true, []], "with moveOntoExisting, the way back is a move (an update)");

        const back = await provider.apply(created.id, read.props, inputs);
        assert.equal(back.replaced, false);
        assert.deepEqual(kit.place(target), on(old));
        assert.ok(holdsPattern(old, "raw"), "the move back copied the data the disk has now");
        assert.equal((await provider.diff(back.id, back.outs, inputs)).changes, false, "no changes after");
    });
});
