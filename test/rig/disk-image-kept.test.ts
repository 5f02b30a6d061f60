/**
 * Issue 14, an AttachedDisk's image (pll-guest1; pll-guest2 as "another domain"), through the
 * providers as the engine calls them (check, diff, then delete + create for a replacement):
 * a re-plug (cache, io, target, serial) keeps the very file and its data; a real destroy with
 * deleteImage removes it, but keeps it (with a warning) when the path holds another file, when
 * another domain uses it, or when the state predates recorded identities. Also: a raw image whose
 * first bytes are a qcow2 header is sized as raw; a stat failure other than ENOENT is an error,
 * not "missing"; and qemu-img create never runs over a file that appeared after the read.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { closeSync, existsSync, fsyncSync, lstatSync, openSync, readFileSync, readSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { AttachedDiskInputs, AttachedDiskOutputs } from "../../provider/contract";
import { InputError, providers, VirshError } from "../../provider/index";
import { inDomainBatch } from "../../provider/batch/domain-batch";
import { ChangeOrder } from "../../provider/batch/round";
import { createSizeProbes, planCreateSize, refusedByGuard } from "../../provider/providers/disk-size";
import { withWarnings } from "./grow-env";
import {
    configXml, createImage, diskByTarget, GUEST1, GUEST2, liveXml, missingPath, rejectsWith, removeFiles, resetGuest, resetGuestInBackground, RigEnv, rigConnection,
    rigUp, typed, virshLocal, virshLocalResult,
} from "./rig-env";

const MiB = 1024 * 1024;
const PATTERN_AT = MiB;

/** The file at a path, as the test's own node sees it: device, inode, birth time (ns). */
function fileIdentity(path: string): string {
    const s = statSync(path, { bigint: true });
    return `${s.dev}:${s.ino}:${s.birthtimeNs}`;
}

/** The identity string the provider records, read here with the host's own stat. */
function statIdentity(path: string): string {
    return execFileSync("stat", ["-c", "%d:%i %w", "--", path], { encoding: "utf8" }).trim();
}

function pattern(token: string): Buffer {
    const block = Buffer.alloc(64 * 1024, 0xa5);
    block.write(`pll-data ${token}`);
    return block;
}

/** Writes the pattern into the image behind QEMU's back (raw, the guest does not use the disk), through to the disk. */
function writePattern(path: string, token: string): void {
    const fd = openSync(path, "r+");
    try {
        writeSync(fd, pattern(token), 0, 64 * 1024, PATTERN_AT);
        fsyncSync(fd);
    } finally {
        closeSync(fd);
    }
}

function hasPattern(path: string, token: string): boolean {
    const fd = openSync(path, "r");
    try {
        const seen = Buffer.alloc(64 * 1024);
        readSync(fd, seen, 0, seen.length, PATTERN_AT);
        return seen.equals(pattern(token));
    } finally {
        closeSync(fd);
    }
}

function capacity(domain: string, target: string): number {
    return Number(/^Capacity:\s*(\d+)/m.exec(virshLocal(["domblkinfo", domain, target]))?.[1]);
}

describe("rig: an AttachedDisk's image is kept by a re-plug, removed only when it is still its own (pll-guest1)", function () {
    this.timeout(300_000);
    const provider = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    let env: RigEnv;
    const files: string[] = [];
    const managed = new Map<string, { id: string; outs: AttachedDiskOutputs }>();
    const disk = (source: string, fields: Partial<AttachedDiskInputs>): AttachedDiskInputs =>
        ({ connection: rigConnection(env), domain: GUEST1, source, ...fields });
    const path = (label: string): string => {
        const p = missingPath(env, label);
        files.push(p);
        return p;
    };

    before(function () {
        env = rigUp();
        resetGuest(GUEST1);
    });

    after(async function () {
        for (const { id, outs } of managed.values()) await provider.delete(id, { ...outs, deleteImage: false }).catch(() => undefined);
        virshLocalResult(["detach-disk", GUEST2, "vdz", "--config"]);
        removeFiles(files);
        resetGuestInBackground(GUEST1);
    });

    it("the issue's scenario: cache none → writeback, then io, target and serial: each a replacement, the same file and its data throughout", async () => {
        const source = path("replug");
        const first = disk(source, { size: "16MiB", deleteImage: true, cache: "none", target: "vdb", serial: "DATA1" });
        const created = await provider.create(first);
        managed.set("replug", created);
        assert.equal(created.outs.imageCreated, true);
        const identity = fileIdentity(source);
        writePattern(source, "replug");

        let olds = created;
        for (const [what, news, target] of [
            ["cache none → writeback", { ...first, cache: "writeback" }, "vdb"],
            ["io threads, target vdb → vdc, serial DATA1 → DATA2", { ...first, cache: "writeback", io: "threads", target: "vdc", serial: "DATA2" }, "vdc"],
        ] as const) {
            const diff = await provider.diff(olds.id, olds.outs, news);
            assert.ok((diff.replaces ?? []).length > 0, `${what}: the preview shows a replacement (the guest sees the disk go and come back)`);
            assert.equal(diff.deleteBeforeReplace, true);
            const applied = await provider.apply(olds.id, olds.outs, news);
            assert.equal(applied.replaced, true, what);
            managed.set("replug", applied);
            assert.equal(fileIdentity(source), identity, `${what}: the same file (device, inode, birth time)`);
            assert.ok(hasPattern(source, "replug"), `${what}: the data written before is still there`);
            assert.equal(applied.outs.imageCreated, true, `${what}: the new disk owns the image`);
            assert.equal(applied.outs.imageIdentity, created.outs.imageIdentity, `${what}: and knows which file it is`);
            assert.equal(diskByTarget(liveXml(GUEST1), target)?.source, source, `${what}: attached live as ${target}`);
            assert.equal(diskByTarget(configXml(GUEST1), target)?.cache, "writeback", `${what}: the config has the new cache`);
            olds = applied;
        }
        assert.equal(created.outs.imageIdentity, statIdentity(source), "the identity recorded is the file's, read by the create");
    });

    it("then the real delete (no replacing diff) removes the file", async () => {
        const { id, outs } = managed.get("replug")!;
        await provider.delete(id, outs);
        managed.delete("replug");
        assert.equal(diskByTarget(configXml(GUEST1), outs.target), undefined);
        assert.equal(existsSync(outs.source), false, "deleteImage removed the image this disk created");
    });

    it("a replacement the engine makes without our diff (pulumi up --replace, a rename without an alias: create first, then the old delete): the disk stays attached to the new instance, its image and data kept", async () => {
        const source = path("forced");
        const inputs = disk(source, { size: "16MiB", deleteImage: true, target: "vdb" });
        const old = await provider.create(inputs);
        writePattern(source, "forced");
        const before = fileIdentity(source);
        // The new instance finds the disk attached and takes it over (same id); then the engine deletes the old one.
        const taken = await provider.create(inputs);
        assert.equal(taken.id, old.id, "the same device");
        const { warnings } = await withWarnings(() => provider.delete(old.id, old.outs));
        assert.ok(diskByTarget(liveXml(GUEST1), "vdb") && diskByTarget(configXml(GUEST1), "vdb"), "still attached, live and config");
        assert.equal(fileIdentity(source), before, "the same file");
        assert.ok(hasPattern(source, "forced"), "with its data");
        assert.ok(warnings.some((w) => /took it over/.test(w) && w.includes(source)), `a warning that says why, got: ${warnings.join(" | ")}`);
        // The instance that holds it now is destroyed for real.
        await provider.delete(taken.id, taken.outs);
        assert.equal(diskByTarget(configXml(GUEST1), "vdb"), undefined, "detached by its own delete");
    });

    it("a delete where the path now holds another file: that file is kept, with a warning", async () => {
        const source = path("swapped");
        const created = await provider.create(disk(source, { size: "16MiB", deleteImage: true, target: "vdb" }));
        // Someone replaces the file (QEMU keeps the old inode open): the path now names a new file.
        rmSync(source);
        writeFileSync(source, "someone else's file\n");
        const { warnings } = await withWarnings(() => provider.delete(created.id, created.outs));
        assert.equal(diskByTarget(configXml(GUEST1), "vdb"), undefined, "detached");
        assert.ok(existsSync(source), "the other file is kept");
        assert.equal(readFileSync(source, "utf8"), "someone else's file\n");
        assert.ok(warnings.some((w) => w.includes(`deleteImage kept ${source}`) && /the path holds another file than the one this disk created/.test(w)
            && w.includes(`rm -- ${source}`)), `a warning naming the path and the way out, got: ${warnings.join(" | ")}`);
    });

    it("a delete while another domain uses the file (pll-guest2's config): kept, with a warning naming that domain", async () => {
        const source = path("shared");
        const created = await provider.create(disk(source, { size: "16MiB", deleteImage: true, target: "vdb" }));
        writePattern(source, "shared");
        virshLocal(["attach-disk", `--domain=${GUEST2}`, `--source=${source}`, "--target=vdz", "--subdriver=raw", "--config"]);
        const { warnings } = await withWarnings(() => provider.delete(created.id, created.outs));
        assert.ok(existsSync(source) && hasPattern(source, "shared"), "kept with its data");
        assert.ok(warnings.some((w) => w.includes(`deleteImage kept ${source}`) && w.includes(`domain '${GUEST2}' still uses it`)),
            `a warning naming pll-guest2, got: ${warnings.join(" | ")}`);
        virshLocal(["detach-disk", GUEST2, "vdz", "--config"]);
    });

    it("a delete while a shut-off domain named as pll-guest2's ID uses the file: kept (domains are read by UUID, not looked up as an ID)", async () => {
        const source = path("id-named");
        const created = await provider.create(disk(source, { size: "16MiB", deleteImage: true, target: "vdb" }));
        const name = virshLocal(["domid", GUEST2]).trim();
        const uuid = randomUUID();
        const xml = join(env.PLL_IMAGES, `pll-id-named-${uuid}.xml`);
        files.push(xml);
        writeFileSync(xml, `<domain type='qemu'><name>${name}</name><uuid>${uuid}</uuid><memory unit='MiB'>32</memory>` +
            `<os><type arch='x86_64'>hvm</type></os><devices><disk type='file' device='disk'><driver name='qemu' type='raw'/>` +
            `<source file='${source}'/><target dev='vdb' bus='virtio'/></disk></devices></domain>`);
        virshLocal(["define", xml]);
        try {
            const { warnings } = await withWarnings(() => provider.delete(created.id, created.outs));
            assert.ok(existsSync(source), `kept: the domain named '${name}' uses it`);
            assert.ok(warnings.some((w) => w.includes(`deleteImage kept ${source}`) && w.includes(`domain '${name}' still uses it`)),
                `a warning naming the domain '${name}', got: ${warnings.join(" | ")}`);
        } finally {
            // By UUID: by its name, virsh would undefine pll-guest2.
            virshLocal(["undefine", `--domain=${uuid}`]);
        }
    });

    it("a state written before identities were recorded (imageCreated, no imageIdentity): the file is kept, with how to remove it", async () => {
        const source = path("old-state");
        const created = await provider.create(disk(source, { size: "16MiB", deleteImage: true, target: "vdb" }));
        const { imageIdentity: _recorded, ...older } = created.outs;
        const { warnings } = await withWarnings(() => provider.delete(created.id, older as AttachedDiskOutputs));
        assert.equal(existsSync(source), true, "kept");
        assert.ok(warnings.some((w) => w.includes(`deleteImage kept ${source}`) && /written before the provider recorded which file it created/.test(w)
            && w.includes(`rm -- ${source}`)), `got: ${warnings.join(" | ")}`);
    });
});

describe("rig: qemu-img is told the format, stat's failures are not \"missing\", qemu-img create never overwrites (pll-guest1)", function () {
    this.timeout(300_000);
    const provider = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    let env: RigEnv;
    const files: string[] = [];
    const managed: Array<{ id: string; outs: AttachedDiskOutputs }> = [];
    const disk = (source: string, fields: Partial<AttachedDiskInputs>): AttachedDiskInputs =>
        ({ connection: rigConnection(env), domain: GUEST1, source, ...fields });

    before(function () {
        env = rigUp();
        resetGuest(GUEST1);
    });

    after(async function () {
        for (const { id, outs } of managed) await provider.delete(id, outs).catch(() => undefined);
        // rmSync, not removeFiles: existsSync follows links, and the loop is one.
        for (const file of files) rmSync(file, { force: true });
        resetGuestInBackground(GUEST1);
    });

    it("format raw on a raw image whose first sector is a qcow2 header claiming 1 GiB: created at 8MiB, grown to 16MiB", async () => {
        const source = createImage(env, "qcow2-header", "raw", "8M");
        const header = createImage(env, "qcow2-header-src", "qcow2", "1G");
        files.push(source, header);
        execFileSync("dd", [`if=${header}`, `of=${source}`, "bs=512", "count=1", "conv=notrunc", "status=none"]);
        assert.match(execFileSync("qemu-img", ["info", "--output=json", source], { encoding: "utf8" }), /"virtual-size": 1073741824/, "probed, it looks like a 1 GiB qcow2");
        const created = await provider.create(disk(source, { size: "8MiB", format: "raw", target: "vdb" }));
        managed.push(created);
        assert.equal(created.outs.capacityBytes, 8 * MiB);
        const applied = await provider.apply(created.id, created.outs, disk(source, { size: "16MiB", format: "raw", target: "vdb" }));
        managed[0] = applied;
        assert.equal(applied.replaced, false);
        assert.equal(capacity(GUEST1, "vdb"), 16 * MiB, "domblkinfo");
        assert.equal(statSync(source).size, 16 * MiB, "the raw file itself");
        assert.deepEqual(readFileSync(source).subarray(0, 512), readFileSync(header).subarray(0, 512), "the guest's bytes untouched");
    });

    it("a create with size on such an image grows it at once (16MiB)", async () => {
        const source = createImage(env, "qcow2-header2", "raw", "8M");
        const header = createImage(env, "qcow2-header2-src", "qcow2", "1G");
        files.push(source, header);
        execFileSync("dd", [`if=${header}`, `of=${source}`, "bs=512", "count=1", "conv=notrunc", "status=none"]);
        const created = await provider.create(disk(source, { size: "16MiB", format: "raw", target: "vdc" }));
        managed.push(created);
        assert.equal(created.outs.imageCreated, false, "an existing image is not this disk's");
        assert.equal(capacity(GUEST1, "vdc"), 16 * MiB);
    });

    it("a source whose stat fails with ELOOP (a symbolic link loop): a clear error, nothing created or attached", async () => {
        const source = missingPath(env, "loop");
        files.push(source);
        symlinkSync(source, source);
        const [live, config] = [liveXml(GUEST1), configXml(GUEST1)];
        for (const fields of [{ size: "16MiB" }, {}]) {
            await rejectsWith(provider.create(disk(source, { ...fields, target: "vdd" })), VirshError, [
                new RegExp(`cannot tell what source ${source} is: stat failed \\(exit 1\\): .*Too many levels of symbolic links; nothing was created or changed`),
                /Fix: fix what stat says on the host \(a symbolic link loop, a hung or stale NFS mount/,
            ]);
        }
        assert.ok(lstatSync(source).isSymbolicLink(), "still the link, nothing written");
        assert.equal(liveXml(GUEST1), live);
        assert.equal(configXml(GUEST1), config);
    });

    it("a file that appears between the read and the apply: the guard refuses, qemu-img create does not run, the file is untouched", async () => {
        const source = missingPath(env, "appears");
        files.push(source);
        const inputs = disk(source, { size: "16MiB", target: "vdd" });
        await inDomainBatch(inputs, async (session) => {
            const read = await session.round({ probes: [{ kind: "path", path: source }, ...Object.values(createSizeProbes(inputs))] });
            const plan = planCreateSize(session.virsh, read, inputs, "missing", 16 * MiB);
            assert.equal(plan.imageCreated, true);
            writeFileSync(source, "appeared after the read\n");
            const round = await session.round({ steps: plan.steps, order: ChangeOrder.Addition });
            assert.equal(readFileSync(source, "utf8"), "appeared after the read\n", "the file that appeared is untouched");
            const refusal = refusedByGuard(session.virsh, plan, round.steps, source);
            assert.ok(refusal instanceof InputError, "the guard refused");
            assert.match(refusal.message, /exists on the host now .* qemu-img create was not run \(it would have written over it\)/);
            assert.equal(round.steps[1]?.ran, false, "qemu-img create did not run");
        });
    });
});
