/**
 * The domainFileIdentities probe's shell line, run by sh against a virsh double and the host's real
 * stat and qemu-img: only a missing file is silent, and a chain is read only as the disk's own format.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MAC_OWNER_MARK, probeLine } from "../../provider/virsh/probes";
import { Virsh } from "../../provider/virsh/virsh";

const virsh = new Virsh({ label: "hv1" } as never, "qemu:///system", "g", false, 30);

describe("the domainFileIdentities probe run by a shell", () => {
    let dir: string;
    before(() => { dir = mkdtempSync(join(tmpdir(), "pll-file-ids-")); });
    after(() => rmSync(dir, { recursive: true, force: true }));

    /** A shut-off domain "d" whose one disk is `path` as `type`; the probe's status, its identities and its stderr. */
    function probe(path: string, type: string): { status: number | null; ids: string[]; stderr: string } {
        const xml = `<domain><devices><disk type='file' device='disk'><driver name='qemu' type='${type}'/><source file='${path}'/><target dev='vda'/></disk></devices></domain>`;
        writeFileSync(join(dir, "virsh"), `#!/bin/sh\ncase "$*" in\n  *" list --all "*) echo 'uuid-d d' ;;\n  *" list "*) ;;\n  *dumpxml*) printf '%s\\n' "${xml}" ;;\nesac\n`, { mode: 0o755 });
        const result = spawnSync("sh", ["-c", probeLine({ kind: "domainFileIdentities" }, virsh)], { encoding: "utf8", env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ""}` } });
        return { status: result.status, ids: result.stdout.split("\n").filter((l) => l !== "" && !l.startsWith(MAC_OWNER_MARK)), stderr: result.stderr };
    }
    const id = (path: string): string => { const s = statSync(path); return `regular file|${s.dev}:${s.ino}|0:0`; };

    it("a qcow2 disk: its backing file is seen, read as qcow2", () => {
        execFileSync("qemu-img", ["create", "-q", "-f", "raw", join(dir, "base.raw"), "1M"]);
        execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "raw", "-b", join(dir, "base.raw"), join(dir, "top.qcow2")]);
        const result = probe(join(dir, "top.qcow2"), "qcow2");
        assert.equal(result.status, 0, result.stderr);
        assert.deepEqual([...new Set(result.ids)].sort(), [id(join(dir, "top.qcow2")), id(join(dir, "base.raw"))].sort());
    });

    it("a raw disk holding a qcow2 header with a backing file: qemu-img never reads it (the backing file is not followed)", () => {
        execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "raw", "-b", join(dir, "base.raw"), join(dir, "planted.raw")]);
        const result = probe(join(dir, "planted.raw"), "raw");
        assert.equal(result.status, 0, result.stderr);
        assert.deepEqual(result.ids, [id(join(dir, "planted.raw"))]);
    });

    it("a missing file prints nothing; a file that cannot be read otherwise fails the probe (never \"nobody uses it\")", () => {
        const missing = probe(join(dir, "gone.img"), "qcow2");
        assert.equal(missing.status, 0, missing.stderr);
        assert.deepEqual(missing.ids, []);
        symlinkSync(join(dir, "loop"), join(dir, "loop"));
        const raw = probe(join(dir, "loop"), "raw");
        assert.equal(raw.status, 2);
        assert.match(raw.stderr, /Too many levels of symbolic links/);
        assert.equal(probe(join(dir, "loop"), "qcow2").status, 2, "qemu-img's own failure fails it too");
    });
});
