/**
 * The pure parts of issue 14's image rows: who uses a file (the diskSources answer), which file a
 * path holds, "missing" only for ENOENT, the guard before qemu-img create, qemu-img always told the
 * format, and the in-process record of replacements that the disk's delete reads.
 */
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { InputError, VirshError } from "../../provider/errors";
import { domainsUsingFile, domainUsingMac, fileIdentityOnHost, pathMissing, sourceKindOnHost } from "../../provider/host-checks";
import { providers } from "../../provider/index";
import { createImageSteps, createSizeProbes, planResize, refusedByGuard } from "../../provider/providers/disk-size";
import { takeReplacement } from "../../provider/providers/replacements";
import { MAC_OWNER_MARK, probeLine } from "../../provider/virsh/probes";
import type { StepOutcome } from "../../provider/virsh/step-script";
import { Virsh } from "../../provider/virsh/virsh";
import type { Round } from "../../provider/batch/round";
import type { AttachedDiskOutputs } from "../../provider/contract";

const virsh = new Virsh({ label: "hv1" } as never, "qemu:///system", "g", false, 30);
const ran = (exitCode: number, stdout: string, stderr = ""): StepOutcome => ({ ran: true, exitCode, stdout, stderr });
const PATH = "/images/my disk.img";

describe("disk image ownership: host answers", () => {
    it("domainsUsingFile: every domain whose live XML or config names the path (spaces kept), nobody else", () => {
        const answer = [
            `${MAC_OWNER_MARK}g`, " Target   Source", "------------------", " vda      /images/root.img", "",
            " Target   Source", "------------------", " vda      /images/root.img",
            `${MAC_OWNER_MARK}other`, " Target   Source", " vda      /images/other.img", " hdc      -",
            " Target   Source", " vda      /images/other.img", ` vdb      ${PATH}`,
            `${MAC_OWNER_MARK}third`, ` sda      ${PATH}.bak`,
        ].join("\n");
        assert.deepEqual(domainsUsingFile(virsh, ran(0, answer), PATH), ["other"]);
        assert.deepEqual(domainsUsingFile(virsh, ran(0, answer), "/images/root.img"), ["g"]);
        assert.deepEqual(domainsUsingFile(virsh, ran(0, answer), "/images/none.img"), []);
    });

    it("a name an older virsh pads in `list --uuid --name` is read without the padding: the resource's own domain is never \"another\"", () => {
        const answer = [`${MAC_OWNER_MARK}g                            `, " vnet0  bridge  br0  virtio  52:54:00:aa:bb:cc",
            `${MAC_OWNER_MARK}other                        `, " vnet1  bridge  br0  virtio  52:54:00:dd:ee:ff", ` vdb      ${PATH}`].join("\n");
        assert.equal(domainUsingMac(virsh, ran(0, answer), "52:54:00:aa:bb:cc"), undefined);
        assert.equal(domainUsingMac(virsh, ran(0, answer), "52:54:00:DD:EE:FF"), "other");
        assert.deepEqual(domainsUsingFile(virsh, ran(0, answer), PATH), ["other"]);
    });

    it("domainsUsingFile: a read that failed is an error, never \"nobody uses it\"", () => {
        assert.throws(() => domainsUsingFile(virsh, ran(1, "", "error: failed to connect to the hypervisor"), PATH),
            (e: unknown) => e instanceof VirshError && /cannot tell which domains use \/images\/my disk\.img \(virsh list or domblklist failed, exit 1\), so the image is kept/.test(e.message));
        assert.throws(() => domainsUsingFile(virsh, { ran: false }, PATH), /did not run/);
    });

    it("the diskSources probe fails when virsh list fails, and when any domain's read fails", () => {
        const line = probeLine({ kind: "diskSources" }, virsh);
        assert.match(line, /names=\$\(.*'list' '--all' '--uuid' '--name'\) \|\| exit \$\?/);
        assert.match(line, /'domblklist' --domain="\$u" <\/dev\/null \|\| exit \$\?; .*'domblklist' '--inactive' --domain="\$u" <\/dev\/null \|\| exit \$\?/);
    });

    describe("the diskSources probe run by a shell, against a virsh double", () => {
        let dir: string;
        const uuid = (name: string): string => `uuid-${name.replaceAll(" ", "_")}`;
        /**
         * The probe's line under sh, with a `virsh` on PATH that lists `domains` ("UUID NAME" lines, the UUID
         * being "uuid-" and the name with "_" for each space) and fails domblklist of `vanishing` its first `failures` times.
         */
        function runProbe(domains: string[], vanishing: string, failures: number): { status: number | null; stdout: string; stderr: string } {
            writeFileSync(join(dir, "virsh"), `#!/bin/sh
case "$*" in
  *" list "*) printf '%s\\n' ${domains.map((d) => `'${uuid(d)} ${d}'`).join(" ")} ;;
  *"--domain=${uuid(vanishing)}"*) n=$(cat "${dir}/count" 2>/dev/null || echo 0); echo $((n+1)) >"${dir}/count"
    if [ "$n" -lt ${failures} ]; then echo "error: failed to get domain '${vanishing}'" >&2; exit 1; fi
    printf ' Target Source\\n vda /images/%s.img\\n' "${vanishing}" ;;
  *) printf ' Target Source\\n vda /images/other.img\\n' ;;
esac
`, { mode: 0o755 });
            rmSync(join(dir, "count"), { force: true });
            const result = spawnSync("sh", ["-c", probeLine({ kind: "diskSources" }, virsh)], { encoding: "utf8", env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ""}` } });
            return { status: result.status, stdout: result.stdout, stderr: result.stderr };
        }
        before(() => { dir = mkdtempSync(join(tmpdir(), "pll-disk-sources-")); });
        after(() => rmSync(dir, { recursive: true, force: true }));

        it("a domain that vanished mid-read: the whole read is made again, and only the complete one is printed", () => {
            const result = runProbe(["a", "b"], "b", 1);
            assert.equal(result.status, 0, result.stderr);
            assert.equal(result.stdout.split("\n").filter((l) => l.startsWith(MAC_OWNER_MARK)).length, 2, result.stdout);
            assert.deepEqual(domainsUsingFile(virsh, ran(0, result.stdout), "/images/b.img"), ["b"]);
        });

        it("each domain is read by its UUID and marked with its name, spaces and all", () => {
            const result = runProbe(["a", "my vm 5"], "my vm 5", 0);
            assert.equal(result.status, 0, result.stderr);
            assert.deepEqual(domainsUsingFile(virsh, ran(0, result.stdout), "/images/my vm 5.img"), ["my vm 5"]);
        });

        it("a read that keeps failing fails the probe after 3 reads: never \"nobody uses it\"", () => {
            const result = runProbe(["a", "b"], "b", 99);
            assert.equal(result.status, 1);
            assert.equal(readFileSync(join(dir, "count"), "utf8").trim(), "3");
            assert.throws(() => domainsUsingFile(virsh, ran(result.status ?? 1, result.stdout, result.stderr), "/images/b.img"), /cannot tell which domains use/);
        });
    });

    it("fileIdentityOnHost: the identity, \"missing\" only for ENOENT, any other failure an error naming path and message", () => {
        assert.equal(fileIdentityOnHost(virsh, ran(0, "65024:12 2026-12-01 09:14:40.375246845 +0000\n"), PATH), "65024:12 2026-12-01 09:14:40.375246845 +0000");
        assert.equal(fileIdentityOnHost(virsh, ran(1, "", `stat: cannot statx '${PATH}': No such file or directory`), PATH), "missing");
        assert.throws(() => fileIdentityOnHost(virsh, ran(1, "", `stat: cannot statx '${PATH}': Too many levels of symbolic links`), PATH),
            /cannot tell what source \/images\/my disk\.img is: stat failed \(exit 1\): stat: cannot statx .*Too many levels of symbolic links; nothing was created or changed/);
    });

    it("pathMissing: only stat's ENOENT; ELOOP, EACCES, a hung NFS mount and sudo's refusal are not \"missing\"", () => {
        assert.equal(pathMissing(ran(1, "", "stat: cannot statx '/x': No such file or directory")), true);
        for (const stderr of ["stat: cannot statx '/x': Too many levels of symbolic links", "stat: cannot statx '/x': Permission denied",
            "stat: cannot statx '/x': Stale file handle", "sudo: a password is required"]) {
            assert.equal(pathMissing(ran(1, "", stderr)), false, stderr);
        }
        assert.equal(pathMissing(ran(124, "", "")), false, "a stat that timed out");
        assert.equal(pathMissing({ ran: false }), false);
    });

    it("sourceKindOnHost: ENOENT says \"does not exist\"; another stat failure says what stat said, and how to look", () => {
        assert.throws(() => sourceKindOnHost(virsh, ran(1, "", "stat: cannot statx '/x': No such file or directory"), "/x", "source"),
            (e: unknown) => e instanceof InputError && /source \/x does not exist on the host/.test(e.message));
        assert.throws(() => sourceKindOnHost(virsh, ran(124, "", ""), "/nfs/x", "source"),
            (e: unknown) => e instanceof VirshError && /cannot tell what source \/nfs\/x is: stat failed \(exit 124\)/.test(e.message)
                && /Fix: .*hung or stale NFS mount.*`stat -L \/nfs\/x`/.test(e.message));
    });
});

describe("disk image ownership: qemu-img", () => {
    it("qemu-img create runs only behind a guard in the same group (nothing at the path, not even a dangling link)", () => {
        assert.deepEqual(createImageSteps(PATH, "qcow2", 64), [
            { host: true, args: ["test", "!", "-e", PATH, "-a", "!", "-h", PATH] },
            { host: true, args: ["qemu-img", "create", "-q", "-f", "qcow2", "--", PATH, "64"] },
        ]);
    });

    it("refusedByGuard: the guard's exit 1 is the clear refusal; a created plan's other failures and sudo's refusal are not", () => {
        const plan = { steps: createImageSteps(PATH, "raw", 64), imageCreated: true };
        const refusal = refusedByGuard(virsh, plan, [ran(1, ""), { ran: false }], PATH);
        assert.ok(refusal instanceof InputError);
        assert.match(refusal.message, /source \/images\/my disk\.img exists on the host now .*qemu-img create was not run \(it would have written over it\) and nothing was attached/);
        assert.equal(refusedByGuard(virsh, plan, [ran(0, ""), ran(1, "", "qemu-img: error")], PATH), undefined);
        assert.equal(refusedByGuard(virsh, plan, [ran(1, "", "sudo: a password is required")], PATH), undefined);
        assert.equal(refusedByGuard(virsh, { steps: [], imageCreated: false }, [ran(1, "")], PATH), undefined);
    });

    it("qemu-img info and resize name the format: guest-written bytes never decide it", () => {
        assert.deepEqual(createSizeProbes({ source: PATH } as never).image, { kind: "imageInfo", path: PATH, format: "raw" });
        assert.match(probeLine({ kind: "imageInfo", path: PATH, format: "raw" }, virsh), /'qemu-img' 'info' '-f' 'raw' '-U' '--output=json' '--' '\/images\/my disk\.img'/);
        const read = { probe: () => ran(0, "Capacity:       8388608\n") } as unknown as Round;
        const olds = { target: "vdb", source: PATH, sourceType: "file", format: "raw" } as AttachedDiskOutputs;
        assert.deepEqual(planResize(virsh, read, olds, false, 16 * 1024 * 1024),
            [{ host: true, args: ["qemu-img", "resize", "-q", "-f", "raw", "--", PATH, String(16 * 1024 * 1024)] }]);
    });
});

describe("disk image ownership: the replacement record", () => {
    const connection = { host: "hv1" };
    const outs = { domain: "vm1", connection, source: "/images/d.img", target: "vdb", sourceType: "file", bus: "virtio", format: "raw",
        readonly: false, attachedLive: true, attachedConfig: true, imageCreated: true, capacityBytes: null, cache: "none" };

    it("a diff that replaces marks the id once; a diff without a replacement clears it", async () => {
        await providers.attachedDisk.diff!("disk-a", outs, { ...outs, cache: "writeback" });
        assert.equal(takeReplacement("disk-a"), true);
        assert.equal(takeReplacement("disk-a"), false, "taken once");
        await providers.attachedDisk.diff!("disk-b", outs, { ...outs, cache: "writeback" });
        await providers.attachedDisk.diff!("disk-b", outs, { ...outs });
        assert.equal(takeReplacement("disk-b"), false, "the later diff showed no replacement");
        await providers.attachedDisk.diff!("disk-c", outs, { ...outs, iotune: { totalIopsSec: 100 } });
        assert.equal(takeReplacement("disk-c"), false, "a live change is no replacement");
    });
});
