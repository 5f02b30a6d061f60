import assert from "node:assert/strict";
import { allocatedBytesOf, awaitJobGone, blockJobProgress, blockJobState, chainAllocationBytes, copyMarginBytes, createdByMove, exclusiveCreateStep, fileSystemTypeOf, freeBytesOf, isStillShutOffStep, keepReason, ownMirror, MAX_MOVE_TIMEOUT_SECONDS, savedStateProblem, startedOnOldSource, moveFacts, MovePlan, moveTimeoutProblem, offlineMoveSteps, stillShutOffStep } from "../../provider/providers/disk-move";
import { removeIfSameFileStep } from "../../provider/providers/disk-image-ownership";
import { Virsh } from "../../provider/virsh/virsh";
import { InputError, providers } from "../../provider/index";
import { PartialUpdate } from "../../provider/providers/partial-update";
import { toDynamicProvider } from "../../provider/providers/provider-kit";
import { domainsUsingSameFile, sourceIdentityKey } from "../../provider/host-checks";
import { Round, RoundRequest } from "../../provider/batch/round";
import type { StepOutcome } from "../../provider/virsh/step-script";
import type { DomainSnapshot } from "../../provider/virsh/domain-snapshot";
import { parseDomainXml } from "../../provider/xml/domain-xml";
import type { DomainSession } from "../../provider/batch/domain-batch";
import { FILE_IDENTITY_FORMAT, MAC_OWNER_MARK, probeKey } from "../../provider/virsh/probes";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const MiB = 1024 * 1024;
const ran = (stdout: string, exitCode = 0) => ({ ran: true as const, exitCode, stdout, stderr: "" });

describe("disk move: what the host says", () => {
    it("blockjob --raw (as libvirt 9.0 prints it, one field a line): bytes copied and total; nothing when no job runs", () => {
        assert.deepEqual(blockJobProgress(ran(" type=Block Copy\n bandwidth=1\n cur=16777216\n end=67108864\n")), { cur: 16777216, end: 67108864 });
        assert.equal(blockJobProgress(ran("No current block job for vdq\n")), undefined);
        assert.equal(blockJobProgress(ran("", 1)), undefined);
    });

    it("df -P -B1: the Available column of the last line; undefined when df failed", () => {
        const df = "Filesystem     1-blocks  Used Available Capacity Mounted on\npll-t16 4194304 0 4194304 0% /var/tmp/pll-rig/t16-small\n";
        assert.equal(freeBytesOf(ran(df)), 4194304);
        assert.equal(freeBytesOf(ran("", 1)), undefined);
    });
});

describe("disk move: the diff's fact", () => {
    it("a host that cannot be read fails the diff (never a replacement of a disk the preview showed moving)", async () => {
        const olds = { domain: "g", target: "vdb", source: "/images/a.img", connection: { host: "127.0.0.1", port: 1, sshConfig: false, password: "x" } } as never;
        const news = { ...(olds as object), source: "/images/b.img" } as never;
        await assert.rejects(moveFacts(olds, news));
    });
});

describe("disk move: what a failed copy may remove", () => {
    const plan = { createsDestination: true } as MovePlan;
    it("only a file this move's exclusive create made (its identity printed): a refused create, a lost answer or a move onto an existing file made nothing", () => {
        assert.equal(createdByMove(plan, [ran("2049:77 2026-12-01 17:50:00.1 +0000\n"), ran("")]), "2049:77 2026-12-01 17:50:00.1 +0000");
        assert.equal(createdByMove(plan, [{ ran: true, exitCode: 2, stdout: "", stderr: "sh: 1: cannot create /x: File exists" }]), undefined);
        assert.equal(createdByMove(plan, [{ ran: false }]), undefined);
        assert.equal(createdByMove({ createsDestination: false } as MovePlan, [ran("2049:77 -\n")]), undefined);
    });

    it("keepReason: kept unless this move made it, the guest is on the old source and no domain names it", () => {
        const mine = { created: "1:2 -", job: "none", onOld: true, users: [] } as const;
        assert.match(keepReason({ ...mine, created: undefined }) ?? "", /did not create it/);
        assert.match(keepReason({ ...mine, onOld: false }) ?? "", /does not name the old source/);
        assert.match(keepReason({ ...mine, users: ["other"] }) ?? "", /a domain's XML names it \(as a disk, a backing file or a block copy's mirror\): 'other'/);
        assert.match(keepReason({ ...mine, users: undefined }) ?? "", /which domains name it could not be read/, "review finding 3: a failed read of the users keeps it");
        assert.equal(keepReason(mine), undefined);
    });

    it("review finding 3: a job that still runs after the abort, or whose read failed, keeps the destination (it may still be written, or pivoted onto)", () => {
        const mine = { created: "1:2 -", onOld: true, users: [] } as const;
        assert.equal(blockJobState(ran(" type=Block Copy\n cur=1\n end=2\n")), "running");
        assert.equal(blockJobState(ran("")), "none");
        assert.equal(blockJobState({ ran: true, exitCode: 1, stdout: "", stderr: "error: failed to get domain" }), "unknown");
        assert.equal(blockJobState({ ran: false }), "unknown");
        assert.match(keepReason({ ...mine, job: "running" }) ?? "", /still runs after blockjob --abort/);
        assert.match(keepReason({ ...mine, job: "unknown" }) ?? "", /could not be read/);
    });

    it("the create refuses anything at the path (noclobber) and prints the identity; the removal compares it in the same step", () => {
        const virsh = new Virsh({ label: "hv1" } as never, "qemu:///system", "g", false, 30);
        assert.match(virsh.commandLine(exclusiveCreateStep("/i/d.img")), /set -C; : >"\$1" \|\| exit 1; .* stat -c '.*' -- "\$1"' 'sh' '\/i\/d\.img'/);
        assert.match(virsh.commandLine(removeIfSameFileStep("/i/d.img", "1:2 -")), /= "\$2" \] && rm -f -- "\$1".* '\/i\/d\.img' '1:2 -'/);
    });
});

describe("disk move: review 2, what a copy would not carry, and what is at the destination", () => {
    const outcome = (stdout: string, exitCode = 0): StepOutcome => ({ ran: true, exitCode, stdout, stderr: "" });
    it("finding 1: a managed save, libvirt snapshots, qcow2 internal snapshots or a failed read refuse the move, with the fix", () => {
        const none = outcome("\n");
        assert.equal(savedStateProblem(outcome("State:          shut off\nManaged save:   no\n"), none, outcome('[{"actual-size":1}]')), undefined);
        assert.match(savedStateProblem(outcome("State:          shut off\nManaged save:   yes\n"), none, undefined)?.fix ?? "", /managedsave-remove/);
        assert.match(savedStateProblem(outcome("Managed save:   no\n"), outcome("s1\ns2\n\n"), undefined)?.why ?? "", /snapshots \(s1, s2\)/);
        assert.match(savedStateProblem(outcome("Managed save:   no\n"), none, outcome('[{"snapshots":[{"name":"base"}]}]'))?.why ?? "", /internal snapshots \(base\)/);
        assert.match(savedStateProblem(outcome("", 1), none, undefined)?.why ?? "", /could not be read/);
        assert.match(savedStateProblem(outcome("Managed save:   no\n"), { ran: false }, undefined)?.why ?? "", /could not be read/);
    });

    it("finding 5: a shut-off move whose domain now runs on the old source is undone (the old <disk> back in the config); one started on the copy is a move", () => {
        const at = (running: boolean, file: string) => ({ running, live: running ? { disks: [{ target: "vdb", file }] } : undefined, config: { disks: [{ target: "vdb", file: "/new.img" }] } }) as unknown as DomainSnapshot;
        const olds = { target: "vdb", source: "/old.img" };
        assert.equal(startedOnOldSource({ running: false }, at(true, "/old.img"), olds), true);
        assert.equal(startedOnOldSource({ running: false }, at(true, "/new.img"), olds), false, "started after the update: it runs on the complete copy");
        assert.equal(startedOnOldSource({ running: false }, at(false, ""), olds), false);
        assert.equal(startedOnOldSource({ running: true }, at(true, "/old.img"), olds), false, "a live move is verified by verifyMoved");
    });

    it("finding 3: the create refuses a device, a FIFO or a link to one at the path (run in sh), writes nothing and leaves the link", () => {
        const dir = mkdtempSync(join(tmpdir(), "pll-create-"));
        const script = exclusiveCreateStep("x").args[2];
        const run = (path: string) => spawnSync("sh", ["-c", script, "sh", join(dir, path)], { encoding: "utf8", timeout: 5000 });
        symlinkSync("/dev/null", join(dir, "null-link"));
        execFileSync("mkfifo", [join(dir, "fifo")]);
        symlinkSync(join(dir, "fifo"), join(dir, "fifo-link"));
        for (const path of ["null-link", "fifo", "fifo-link"]) {
            const result = run(path);
            assert.equal(result.status, 1, path);
            assert.match(result.stderr, /something other than a new file is at/);
        }
        assert.equal(readlinkSync(join(dir, "null-link")), "/dev/null");
        assert.equal(run("new").status, 0);
        assert.ok(lstatSync(join(dir, "new")).isFile());
        assert.equal(run("new").status, 1, "noclobber: an existing file is refused");
        rmSync(dir, { recursive: true });
    });
});

describe("disk move: after the copy's answer was lost", function () {
    // The first progress line loads @pulumi/pulumi's log (1.5 s on a quiet machine, more under load).
    this.timeout(30_000);
    const virsh = new Virsh({ label: "hv1" } as never, "qemu:///system", "g", false, 30);
    const job = { kind: "blockJob", device: "vdb" } as const;
    /** The domain as the snapshot commands print it: running, its disk vdb with a block copy's mirror when given. */
    const domainXml = (mirror?: string) => `<domain><name>g</name><memory>1024</memory><vcpu>1</vcpu><devices><disk type='file' device='disk'><source file='/old'/><target dev='vdb'/>${mirror ?? ""}</disk></devices></domain>`;
    const domainReads = (mirror?: string): StepOutcome[] => [ran("running\n"), ran(domainXml(mirror)), ran(domainXml())];
    const readyInto = (path: string) => `<mirror type='file' file='${path}' format='qcow2' job='copy' ready='yes'><source file='${path}'/></mirror>`;
    /** A session whose reads answer `answers` in turn (the job's outcome and the disk's mirror); the steps it was sent are kept. */
    const sessionAnswering = (answers: Array<{ job: StepOutcome; mirror?: string }>) => {
        const sent: Array<readonly string[]> = [];
        let reads = 0;
        const session = {
            virsh, claimed: new Set<string>(), owners: new Map<string, string[]>(),
            round: async (request: RoundRequest) => {
                if (request.steps?.length) {
                    sent.push(...request.steps.map((step) => step.args));
                    return new Round(virsh, [], undefined, domainReads(), new Map(), undefined);
                }
                const answer = answers[reads++];
                return new Round(virsh, [], undefined, domainReads(answer.mirror), new Map([[probeKey(job), answer.job]]), undefined);
            },
            sleep: async () => undefined,
        } as DomainSession;
        return { session, sent, reads: () => reads };
    };

    it("review finding 2: the disk's block job is read until none runs; only then is the move verified or undone", async () => {
        const host = sessionAnswering([{ job: ran(" cur=1\n end=4\n") }, { job: { ran: true, exitCode: 1, stdout: "", stderr: "error: lost" } }, { job: ran(" cur=3\n end=4\n") }, { job: ran("") }]);
        const last = await awaitJobGone(host.session, "vdb", "/new", true, 3600);
        assert.equal(host.reads(), 4, "it read until the job was gone (a failed read is not \"no job\")");
        assert.equal(blockJobState(last.probe(job)), "none");
    });

    it("review 3, finding 5: this move's copy that stays READY (its virsh died with the connection) is pivoted every 3 ready reads, then read until gone", async () => {
        const ready = { job: ran(" cur=4\n end=4\n"), mirror: readyInto("/new") };
        const host = sessionAnswering([{ job: ran(" cur=3\n end=4\n"), mirror: "<mirror type='file' file='/new' job='copy'/>" }, ready, ready, ready, ready, ready, ready, { job: ran("") }]);
        const last = await awaitJobGone(host.session, "vdb", "/new", true, 3600);
        const pivot = ["blockjob", "--domain=g", "--path=vdb", "--pivot"];
        assert.deepEqual(host.sent, [pivot, pivot], "a pivot after the third ready read, again after the sixth (the first was refused)");
        assert.equal(host.reads(), 8);
        assert.equal(blockJobState(last.probe(job)), "none");
    });

    it("review 4, finding 1: a ready copy into another file (someone else's blockcopy) is never pivoted; a domain no longer running has no job", async () => {
        const foreign = { job: ran(" cur=4\n end=4\n"), mirror: readyInto("/backup.qcow2") };
        const host = sessionAnswering([foreign, foreign, foreign, foreign, { job: ran("") }]);
        await awaitJobGone(host.session, "vdb", "/new", true, 3600);
        assert.deepEqual(host.sent, [], "nothing sent to a job that is not this move's");
        assert.equal(host.reads(), 1, "and no waiting for it: this move's copy is over");
        let reads = 0;
        const stopped = {
            virsh, claimed: new Set<string>(), owners: new Map<string, string[]>(),
            round: async () => { reads++; return new Round(virsh, [], undefined, [ran("shut off\n"), ran(""), domainReads()[2]], new Map([[probeKey(job), { ran: true as const, exitCode: 1, stdout: "", stderr: "error: Requested operation is not valid: domain is not running" }]]), undefined); },
            sleep: async () => undefined,
        } as DomainSession;
        await awaitJobGone(stopped, "vdb", "/new", true, 3600);
        assert.equal(reads, 1, "a shut-off domain ends the wait at once (its failed blockjob read is not \"a job may run\")");
    });

    it("ownMirror: the live XML's <mirror> of that disk, only when it names the move's destination", () => {
        const snapshot = (mirror: string) => ({ running: true, live: parseDomainXml(domainXml(mirror)) }) as DomainSnapshot;
        assert.deepEqual(ownMirror(snapshot(readyInto("/new")), "vdb", "/new"), { target: "vdb", path: "/new", ready: true });
        assert.equal(ownMirror(snapshot(readyInto("/other")), "vdb", "/new"), undefined);
        assert.equal(ownMirror(snapshot("<mirror type='block' job='copy'><source dev='/dev/loop3'/></mirror>"), "vdb", "/dev/loop3")?.ready, false);
        assert.match(keepReason({ created: "1:2 -", job: "running", ownJob: false, onOld: true, users: [] }) ?? "", /not this move's .* left alone/);
    });
});

describe("disk move: the same file by another path", () => {
    it("review finding 5: a block device by its device number (/dev/vg/lv and /dev/mapper/vg-lv), anything else by dev:inode", () => {
        assert.equal(sourceIdentityKey("block special file|5:321|fd:3\n"), "block fd:3");
        assert.equal(sourceIdentityKey("block special file|5:999|fd:3"), sourceIdentityKey("block special file|5:321|fd:3"));
        assert.equal(sourceIdentityKey("regular file|65024:12|0:0"), "file 65024:12");
        assert.equal(sourceIdentityKey(""), undefined);
    });

    it("domainsUsingSameFile: the domains whose source is that file, whatever path it had", () => {
        const virsh = new Virsh({ label: "hv1" } as never, "qemu:///system", "g", false, 30);
        const answer = `${MAC_OWNER_MARK}g\nregular file|1:2|0:0\n${MAC_OWNER_MARK}other\nregular file|1:3|0:0\nblock special file|5:9|fd:3\n`;
        assert.deepEqual(domainsUsingSameFile(virsh, ran(answer), ran("regular file|1:3|0:0"), "/link"), ["other"]);
        assert.deepEqual(domainsUsingSameFile(virsh, ran(answer), ran("block special file|5:1|fd:3"), "/dev/mapper/vg-lv"), ["other"]);
        assert.deepEqual(domainsUsingSameFile(virsh, ran(answer), ran("regular file|1:4|0:0"), "/new"), []);
        assert.throws(() => domainsUsingSameFile(virsh, ran("", 1), ran("regular file|1:3|0:0"), "/link"), /cannot tell which domains use \/link/);
    });
});

describe("disk move: shut off", () => {
    it("review finding 6: the convert and the config's update each run only while the domain is still shut off", () => {
        const [convert, update] = [{ host: true, args: ["qemu-img", "convert"] }, { args: ["update-device"] }];
        const steps = offlineMoveSteps("g", convert, update);
        assert.deepEqual(steps.map((c) => isStillShutOffStep(c)), [true, false, true, false]);
        assert.deepEqual([steps[1], steps[3]], [convert, update]);
        const virsh = new Virsh({ label: "hv1" } as never, "qemu:///system", "g", false, 30);
        assert.match(virsh.commandLine(stillShutOffStep("g")), /^\[ "\$\(.*'domstate' '--domain=g'.* \| sha256sum\)" = '[0-9a-f]{64}  -' \]$/);
    });
});

describe("disk move: the check", () => {
    it("review finding 9: moveTimeout is at most 7 days (a longer bound overflowed setTimeout, which then fired at once)", async () => {
        assert.equal(moveTimeoutProblem(3600), undefined);
        assert.equal(moveTimeoutProblem(MAX_MOVE_TIMEOUT_SECONDS), undefined);
        assert.match(moveTimeoutProblem(MAX_MOVE_TIMEOUT_SECONDS + 1) ?? "", /must be at most 604800 \(7 days/);
        assert.match(moveTimeoutProblem(0) ?? "", /at least 1/);
        const inputs = { connection: { host: "hv1" }, domain: "g", source: "/i/a.img", moveTimeout: 3_000_000 };
        const checked = await providers.attachedDisk.check!(inputs, inputs);
        assert.ok(checked.failures?.some((f) => f.property === "moveTimeout" && /at most 604800/.test(f.reason)), JSON.stringify(checked.failures));
    });
});

describe("disk image removal", () => {
    it("review finding 13: the identity compare and the rm run in one step: a path that holds another file by then is kept", () => {
        const virsh = new Virsh({ label: "hv1" } as never, "qemu:///system", "g", false, 30);
        const dir = mkdtempSync(join(tmpdir(), "pll-mv-rm-"));
        try {
            const path = join(dir, "image.img");
            const identityOf = () => execFileSync("stat", ["-c", FILE_IDENTITY_FORMAT, "--", path], { encoding: "utf8" }).trim();
            const remove = (identity: string) => spawnSync("sh", ["-c", virsh.commandLine(removeIfSameFileStep(path, identity))]).status;
            writeFileSync(path, "mine");
            const mine = identityOf();
            rmSync(path);
            writeFileSync(path, "someone else's");
            assert.equal(remove(mine), 1);
            assert.ok(existsSync(path), "another file at the path is kept");
            assert.equal(remove(identityOf()), 0);
            assert.ok(!existsSync(path), "the file of that identity is removed");
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});

describe("disk move: the destination's file system", () => {
    it("df --output=fstype: the type on the last line; undefined when df failed", () => {
        assert.equal(fileSystemTypeOf(ran("Type\ndevtmpfs\n")), "devtmpfs");
        assert.equal(fileSystemTypeOf(ran("", 1)), undefined);
    });
});

describe("disk move: the room a copy needs", () => {
    it("review finding 7: every layer of the chain (the copy flattens it), plus a margin of 1 % of the disk, at least 1 MiB", () => {
        const chain = JSON.stringify([{ filename: "top.qcow2", "actual-size": 2 * MiB }, { filename: "base.img", "actual-size": 30 * MiB }]);
        assert.equal(chainAllocationBytes(ran(chain)), 32 * MiB);
        assert.equal(chainAllocationBytes(ran("[]")), undefined);
        assert.equal(chainAllocationBytes(ran("", 1)), undefined);
        assert.equal(copyMarginBytes(16 * MiB), MiB);
        assert.equal(copyMarginBytes(10 * 1024 * MiB), Math.ceil(10 * 1024 * MiB / 100));
    });
});

describe("disk move: a shut-off copy's progress", () => {
    it("stat -c '%b %B': the new file's allocated bytes; undefined when stat failed", () => {
        assert.equal(allocatedBytesOf(ran("2048 512\n")), MiB);
        assert.equal(allocatedBytesOf(ran("", 1)), undefined);
        assert.equal(allocatedBytesOf({ ran: false }), undefined);
    });
});

describe("disk move: a failure after the move", () => {
    it("review finding 10: the update fails as an initialization failure that carries the moved outputs and the serialized provider (the engine stores them)", async () => {
        const failure = new InputError("blkdeviotune failed", { domain: "d" }, "fix it");
        const provider = toDynamicProvider<Record<string, unknown>, Record<string, unknown>>({
            table: { resource: "T", properties: [], rules: [] }, checks: () => [], wasRunning: () => true,
            create: () => Promise.reject(new Error("unused")), read: () => Promise.resolve(undefined), delete: () => Promise.resolve(),
            update: () => Promise.reject(new PartialUpdate({ source: "/new", gone: undefined }, "disk vdb was moved to /new", failure)),
        });
        await assert.rejects(provider.update?.("id-1", { source: "/old" }, { source: "/new", __provider: "serialized" }) ?? Promise.resolve(), (error: unknown) => {
            const sent = error as InputError & { id?: string; properties?: Record<string, unknown>; reasons?: string[] };
            assert.ok(sent instanceof InputError, "the failure keeps its type");
            assert.equal(sent.id, "id-1");
            assert.deepEqual(sent.properties, { source: "/new", __provider: "serialized" });
            assert.match(sent.message, /^disk vdb was moved to \/new; then: blkdeviotune failed/);
            assert.deepEqual(sent.reasons, [sent.message]);
            return true;
        });
    });
});
