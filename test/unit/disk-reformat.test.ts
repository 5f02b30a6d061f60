/**
 * AttachedDisk: a new format for the file the state names is refused (QEMU would read its bytes in
 * another format), by the diff, against the state's source and format, never the last inputs.
 */
import assert from "node:assert/strict";
import type { AttachedDiskInputs, DiskFormat } from "../../provider/contract";
import { InputError } from "../../provider/errors";
import { sameFileAnswers } from "../../provider/host-checks";
import { providers } from "../../provider/index";
import { reformatRefusal } from "../../provider/providers/disk-reformat";
import { UNKNOWN_VALUE } from "../../provider/rules/rule-table";
import type { StepOutcome } from "../../provider/virsh/step-script";

const connection = { host: "hv1", user: "root" };
const IMAGE = "/var/lib/images/a.img";
const disk = (extra: Record<string, unknown>) => ({ connection, domain: "vm1", source: IMAGE, ...extra });
const failuresOf = async (olds: Record<string, unknown>, news: Record<string, unknown>) =>
    (await providers.attachedDisk.check!(olds, news)).failures ?? [];
/** The state's outputs of a disk vdb on `source` in `format`. */
const stateOf = (source: string, format: DiskFormat) =>
    ({ ...disk({ target: "vdb", sourceType: "file", bus: "virtio", attachedLive: true, attachedConfig: true }), source, format });
const diffOf = (stored: Record<string, unknown>, news: Record<string, unknown>) => providers.attachedDisk.diff!("vm1#disk/vdb", stored, news);
const refusedWith = (patterns: RegExp[]) => (error: Error) => error instanceof InputError && patterns.every((p) => p.test(error.message));

describe("AttachedDisk diff: format against the state", () => {
    it("raw → qcow2 on the same source: check has no such rule, the diff refuses, naming host, domain, disk, both formats, why the state names them, and the fix", async () => {
        assert.deepEqual(await failuresOf(disk({}), disk({ format: "qcow2" })), []);
        await assert.rejects(diffOf(stateOf(IMAGE, "raw"), disk({ format: "qcow2" })), refusedWith([
            /format: raw → qcow2 on the same source \/var\/lib\/images\/a\.img would read the image's bytes as qcow2/,
            /the state names \/var\/lib\/images\/a\.img as raw \(the last up, an earlier move that failed after its copy, or a refresh\)/,
            /\(host hv1, domain 'vm1', device disk vdb\)/,
            /Fix: keep format "raw", or convert a copy \(qemu-img convert -f raw -O qcow2 \/var\/lib\/images\/a\.img NEW\) and set source to the copy with format "qcow2"/]));
    });

    it("qcow2 → raw (format unset) is refused as well", async () => {
        await assert.rejects(diffOf(stateOf(IMAGE, "qcow2"), disk({})), refusedWith([/qcow2 → raw on the same source/]));
    });

    it("review 3, finding 1: after a refresh of a conversion by hand (the state qcow2, the last inputs raw), qcow2 passes check and diff (no change) and raw is refused: one value passes", async () => {
        const [refreshed, lastInputs] = [stateOf(IMAGE, "qcow2"), disk({ format: "raw" })];
        assert.deepEqual(await failuresOf(lastInputs, disk({ format: "qcow2" })), []);
        assert.equal((await diffOf(refreshed, disk({ format: "qcow2", target: "vdb" }))).changes, false);
        assert.deepEqual(await failuresOf(lastInputs, disk({ format: "raw" })), []);
        await assert.rejects(diffOf(refreshed, disk({ format: "raw", target: "vdb" })), refusedWith([/qcow2 → raw on the same source/, /the state names \/var\/lib\/images\/a\.img as qcow2/]));
    });

    it("review 2, finding 8: after a move that failed after its copy (the state: the new source and format; the last inputs: the old ones), a format-only change on the new source is refused", async () => {
        const moved = stateOf("/var/lib/images/b.qcow2", "qcow2");
        const news = disk({ source: "/var/lib/images/b.qcow2", format: "raw" });
        assert.deepEqual(await failuresOf(disk({}), news), []);
        await assert.rejects(diffOf(moved, news), refusedWith([/qcow2 → raw on the same source \/var\/lib\/images\/b\.qcow2 would read the image's bytes as raw/,
            /Fix: keep format "qcow2", or convert a copy \(qemu-img convert -f qcow2 -O raw \/var\/lib\/images\/b\.qcow2 NEW\)/]));
    });

    it("the state's format, a format or source unknown until apply, or a new file are left to the rows", async () => {
        assert.equal((await diffOf(stateOf(IMAGE, "raw"), disk({ target: "vdb" }))).changes, false);
        assert.ok(await diffOf(stateOf(IMAGE, "raw"), disk({ format: UNKNOWN_VALUE })));
        assert.ok(await diffOf(stateOf(IMAGE, "raw"), disk({ source: UNKNOWN_VALUE, format: "qcow2" })));
        assert.equal(reformatRefusal(stateOf(IMAGE, "raw"), disk({ source: "/var/lib/images/a.qcow2", format: "qcow2" }) as AttachedDiskInputs, {}), undefined);
    });
});

describe("AttachedDisk diff: another name of the state's file with a new format (review 3, finding 2)", () => {
    const said = (line: string): StepOutcome => ({ ran: true, exitCode: 0, stdout: `${line}\n`, stderr: "" });
    const image = said("regular file|2049:77|0:0");

    it("sameFileAnswers: one st_dev:st_ino (a symbolic link, /a/./b), or one block device by its device number (any node), is one file; another file, or a stat that failed, is not", () => {
        assert.equal(sameFileAnswers(image, said("regular file|2049:77|0:0")), true);
        assert.equal(sameFileAnswers(said("block special file|5:310|fd:3"), said("block special file|5:402|fd:3")), true);
        assert.equal(sameFileAnswers(image, said("regular file|2049:78|0:0")), false);
        const missing: StepOutcome = { ran: true, exitCode: 1, stdout: "", stderr: "stat: cannot statx '/x': No such file or directory" };
        assert.equal(sameFileAnswers(missing, missing), false);
        assert.equal(sameFileAnswers({ ran: false }, { ran: false }), false);
    });

    it("a new format is refused naming both paths, that they are one file, and the fix; the same format (a swap to the same file, as before) or another file is left to the rows", () => {
        const link = "/var/lib/images/link.img";
        const refused = reformatRefusal(stateOf(IMAGE, "raw"), disk({ source: link, format: "qcow2" }) as AttachedDiskInputs, { host: "hv1", domain: "vm1", device: "disk vdb" }, true);
        assert.ok(refused instanceof InputError);
        assert.match(refused.message, /format: raw → qcow2 on source \/var\/lib\/images\/link\.img, the same file as \/var\/lib\/images\/a\.img, would read the image's bytes as qcow2/);
        assert.match(refused.message, /\(host hv1, domain 'vm1', device disk vdb\)\nFix: keep format "raw" and source \/var\/lib\/images\/a\.img, or convert a copy \(qemu-img convert -f raw -O qcow2 \/var\/lib\/images\/a\.img NEW\)/);
        assert.equal(reformatRefusal(stateOf(IMAGE, "raw"), disk({ source: link, format: "raw" }) as AttachedDiskInputs, {}, true), undefined);
        assert.equal(reformatRefusal(stateOf(IMAGE, "raw"), disk({ source: link, format: "qcow2" }) as AttachedDiskInputs, {}, false), undefined);
    });
});
