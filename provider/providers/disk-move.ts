/**
 * AttachedDisk move: a new `source` for the same disk (same target), its data copied. Running:
 * `virsh blockcopy --transient-job --pivot --wait`, the guest never notices; shut off: `qemu-img
 * convert`, then the config names the new source. In the shape of one feature: what to read
 * (moveProbes), the checks and the steps (planMove), the verify (verifyMoved); moveDisk calls each
 * once, in that order, and on a failure leaves the guest on the old source with nothing behind.
 */
import { createHash } from "node:crypto";
import { dirname } from "node:path";
import type { AttachedDiskInputs, AttachedDiskOutputs, DiskFormat } from "../contract";
import type { DomainSession } from "../batch/domain-batch";
import { inDomainBatch } from "../batch/domain-batch";
import { runScript } from "../batch/batch-exec";
import { ChangeOrder, Round } from "../batch/round";
import { info, warn } from "../engine-log";
import { HostUnreachableError, InputError, VirshError } from "../errors";
import { blockDeviceBytes, checkImageDirectory, domainsUsingFile, domainsUsingSameFile, domblkCapacity, imageVirtualSize, pathMissing, sameFileAnswers, sourceKindOnHost } from "../host-checks";
import { DESTINATION_EXISTS } from "../rules/attached-disk-rules";
import { UNKNOWN_VALUE, Values } from "../rules/rule-table";
import { formatBytes } from "../units";
import { integerAtLeast } from "../validation";
import type { DomainSnapshot } from "../virsh/domain-snapshot";
import type { BlockCopyMirror } from "../xml/domain-xml";
import { FILE_IDENTITY_FORMAT, Probe, probeLine } from "../virsh/probes";
import { buildStepScript, StepOutcome } from "../virsh/step-script";
import type { Command, Virsh } from "../virsh/virsh";
import { diskSourcePath } from "../xml/disk-xml";
import { diskAt } from "./device-lookup";
import { capacityProbe } from "./disk-size";
import { releaseImage, removeIfSameFileStep } from "./disk-image-ownership";
import { reformatRefusal } from "./disk-reformat";
import { unpreviewedChange } from "./provider-kit";
import { diskOn, refuseStranger } from "./device-stranger";

/** Default bound of a copy (moveTimeout), in seconds. */
export const DEFAULT_MOVE_TIMEOUT_SECONDS = 3600;
/** The longest moveTimeout: the timers that enforce it (setTimeout) fire at once past 2^31 ms (about 24.8 days). */
export const MAX_MOVE_TIMEOUT_SECONDS = 7 * 24 * 3600;

export const moveTimeoutProblem = (v: unknown): string | undefined => integerAtLeast(1)(v)
    ?? (Number(v) > MAX_MOVE_TIMEOUT_SECONDS ? `must be at most ${MAX_MOVE_TIMEOUT_SECONDS} (7 days; got ${String(v)}): a longer bound would overflow the timer that enforces it` : undefined);

/** How often a running copy's progress goes to the engine's log. */
const PROGRESS_INTERVAL_MS = 5000;
/** Slack of the host's bound over virsh's own --timeout (which aborts the job itself). */
const ABORT_SLACK_SECONDS = 60;
const MiB = 1024 * 1024;

/**
 * The diff's fact: is something at the new source? Absent only when the preview cannot know the
 * path or host yet (unknown values). A read that fails (SSH, sudo, EACCES, a hung mount) fails the
 * diff: falling back to a replacement would unplug a live disk that the preview showed moving.
 * Another name of the stored source's file (a symbolic link, /dev/vg/lv beside /dev/mapper/vg-lv,
 * /a/./b) with a new format is refused as that file's reformat: its swap would re-plug the same image
 * in the other format. Both files' identities come in the same round.
 */
export async function moveFacts(olds: AttachedDiskOutputs, news: AttachedDiskInputs): Promise<Values> {
    if (news.source === olds.source || typeof news.source !== "string" || news.source === UNKNOWN_VALUE || JSON.stringify(news.connection ?? {}).includes(UNKNOWN_VALUE)) return {};
    const probe: Probe = { kind: "path", path: news.source };
    const [newFile, storedFile]: Probe[] = [{ kind: "sourceIdentity", path: news.source }, { kind: "sourceIdentity", path: olds.source }];
    return inDomainBatch(news, async (session) => {
        const read = await session.round({ probes: [probe, newFile, storedFile] });
        const outcome = read.probe(probe);
        if (pathMissing(outcome)) return { [DESTINATION_EXISTS]: false };
        sourceKindOnHost(session.virsh, outcome, news.source, "source");
        const refused = reformatRefusal(olds, news, session.virsh.context(`disk ${olds.target}`), sameFileAnswers(read.probe(newFile), read.probe(storedFile)));
        if (refused) throw refused;
        return { [DESTINATION_EXISTS]: true };
    });
}

interface MoveProbes {
    destination: Probe;
    directory: Probe;
    free: Probe;
    fileSystem: Probe;
    /** The old image's virtual size (qemu-img info), or a block device's size. */
    allocation: Probe;
    /** The old image's chain (qemu-img info --backing-chain): the copy flattens it, so it needs the room of every layer. */
    chain: Probe;
    capacity: Probe;
    users: Probe;
    /** The same, as the files they are: another path to the destination's file is a user too. */
    userFiles: Probe;
    destinationFile: Probe;
    /** An existing destination's size, read as a file in the new format and as a block device (the one that fits is used). */
    destinationImage: Probe;
    destinationBlock: Probe;
    /** A managed save and libvirt snapshots name the old source: a copy carries neither. */
    saved: Probe;
    snapshots: Probe;
    /** A block job already on the disk (a copy, a commit) is not this move's. */
    job: Probe;
}

export function moveProbes(olds: AttachedDiskOutputs, news: AttachedDiskInputs): MoveProbes {
    const directory = dirname(news.source);
    return {
        destination: { kind: "path", path: news.source },
        directory: { kind: "path", path: directory },
        free: { kind: "freeBytes", path: directory },
        fileSystem: { kind: "fileSystemType", path: directory },
        allocation: olds.sourceType === "block" ? { kind: "blockSize", path: olds.source } : { kind: "imageInfo", path: olds.source, format: olds.format },
        chain: { kind: "imageChain", path: olds.source, format: olds.format },
        capacity: capacityProbe(olds.target),
        users: { kind: "diskSources" },
        userFiles: { kind: "domainFileIdentities" },
        destinationFile: { kind: "sourceIdentity", path: news.source },
        destinationImage: { kind: "imageInfo", path: news.source, format: news.format ?? "raw" },
        destinationBlock: { kind: "blockSize", path: news.source },
        saved: { kind: "dominfo" },
        snapshots: { kind: "snapshotNames" },
        job: { kind: "blockJob", device: olds.target },
    };
}

/** A disk's source as a config's <disk> names it: the move's new one, or the old one put back. */
export interface MovedSource {
    source: string;
    sourceType: "file" | "block";
    format: DiskFormat;
}

/** What builds the disk's <disk> element for update-device --config (the disk's other settings as they are). */
export type DiskXmlFor = (disk: MovedSource) => string;

export interface MovePlan {
    /**
     * The destination's exclusive create (first) and qemu-img create, when the copy makes it: a round
     * of their own, so that a copy whose answer is lost (the long step) still knows the file is its own.
     */
    create: Command[];
    /** The copy (and, shut off, the config's update). */
    steps: Command[];
    /** The copy makes the destination (a new file): only then may a failure remove it, and only then does this resource own it. */
    createsDestination: boolean;
    sourceType: "file" | "block";
    format: DiskFormat;
    running: boolean;
    /** The data a created destination receives (every layer's allocation): a shut-off copy's progress is the destination's allocation against it. */
    copyBytes?: number;
}

/** Room a copy's new file may take beyond the data: qcow2 metadata and the file system's own, 1 % of the disk, at least 1 MiB. */
export function copyMarginBytes(capacity: number): number {
    return Math.max(MiB, Math.ceil(capacity / 100));
}

/** The sum of every layer's allocation (`actual-size`) in a `qemu-img info --backing-chain --output=json` answer; undefined when it cannot be read. */
export function chainAllocationBytes(outcome: StepOutcome): number | undefined {
    if (!outcome.ran || outcome.exitCode !== 0) return undefined;
    try {
        const layers = JSON.parse(outcome.stdout) as unknown;
        const sizes = Array.isArray(layers) ? layers.map((layer) => (layer as Record<string, unknown>)["actual-size"]) : [];
        return sizes.length > 0 && sizes.every((n) => typeof n === "number") ? (sizes as number[]).reduce((a, b) => a + b, 0) : undefined;
    } catch {
        return undefined;
    }
}

function allocationBytes(virsh: Virsh, olds: AttachedDiskOutputs, outcome: StepOutcome): number {
    if (olds.sourceType === "block") return blockDeviceBytes(virsh, outcome, olds.source);
    const parsed = chainAllocationBytes(outcome);
    if (parsed === undefined) {
        throw new VirshError(`cannot read how much of ${olds.source} and its backing files is allocated (qemu-img info --backing-chain)`, virsh.context(`disk ${olds.target}`, outcome.ran ? outcome.stderr.trim() : undefined),
            "check that qemu-utils is installed on the host and format names the image's real format", 1);
    }
    return parsed;
}

/** `df -P -B1` of the directory: the Available column. */
export function freeBytesOf(outcome: StepOutcome): number | undefined {
    if (!outcome.ran || outcome.exitCode !== 0) return undefined;
    const fields = outcome.stdout.trim().split("\n").at(-1)?.trim().split(/\s+/) ?? [];
    const bytes = Number(fields[3]);
    return Number.isFinite(bytes) ? bytes : undefined;
}

/** What `virsh domstate` prints for a shut-off domain. */
const SHUT_OFF_ANSWER = "shut off\n\n";

/** Succeeds only while the domain is shut off (its domstate compared on the host). */
export function stillShutOffStep(domain: string): Command {
    return { args: ["domstate", `--domain=${domain}`], outputSha256: createHash("sha256").update(SHUT_OFF_ANSWER, "utf8").digest("hex") };
}

export function isStillShutOffStep(command: Command | undefined): boolean {
    return command?.args[0] === "domstate" && command.outputSha256 !== undefined;
}

/**
 * A shut-off move: the convert and the config's update, each only while the domain is still shut
 * off. A domain started meanwhile runs on the old source and would boot next time from a stale
 * copy: then the copy is undone (it is this move's) and the move refused.
 */
export function offlineMoveSteps(domain: string, convert: Command, update: Command): Command[] {
    return [stillShutOffStep(domain), convert, stillShutOffStep(domain), update];
}

/** The last line of `df --output=fstype`; undefined when df failed. */
export function fileSystemTypeOf(outcome: StepOutcome): string | undefined {
    return outcome.ran && outcome.exitCode === 0 ? outcome.stdout.trim().split("\n").at(-1)?.trim() : undefined;
}

/** A created destination is an image file: under /dev (devtmpfs) it would be a file in RAM, gone at the next boot. */
function refuseDeviceFileSystem(virsh: Virsh, outcome: StepOutcome, dest: string, device: string): void {
    if (fileSystemTypeOf(outcome) !== "devtmpfs") return;
    throw new InputError(`source ${dest} does not exist, and its directory is on devtmpfs (/dev): a move would create an image file there, in RAM, lost at the next boot; nothing was copied`,
        virsh.context(device), "create the block device first (e.g. lvcreate with the disk's size), then set sourceType: \"block\" and moveOntoExisting: true");
}

/**
 * Why the disk cannot move: what a copy would not carry, or leave naming the old file. A managed
 * save (the domain reads "shut off") restores at its next start the saved XML, with the old source;
 * libvirt snapshots and qcow2 internal snapshots stay with the old image. A read that fails refuses too.
 */
export function savedStateProblem(dominfo: StepOutcome, snapshots: StepOutcome, chain: StepOutcome | undefined): { why: string; fix: string } | undefined {
    if (!dominfo.ran || dominfo.exitCode !== 0 || !snapshots.ran || snapshots.exitCode !== 0) {
        return { why: "whether the domain has a managed save or snapshots could not be read (virsh dominfo, snapshot-list)", fix: "check that virsh dominfo and virsh snapshot-list work for the domain, then run pulumi up again" };
    }
    if (/^Managed save:\s*yes\s*$/m.test(dominfo.stdout)) {
        return { why: "the domain has a managed save (virsh managedsave): its next start restores the saved state, which names the old source", fix: "start the guest (the move then runs live), or discard the saved state with `virsh managedsave-remove DOMAIN`" };
    }
    const names = snapshots.stdout.split("\n").map((l) => l.trim()).filter((l) => l !== "");
    if (names.length > 0) return { why: `the domain has snapshots (${names.join(", ")}), which name the old source and are not carried by the copy`, fix: "delete the snapshots (`virsh snapshot-delete DOMAIN NAME`), then move" };
    const internal = chain ? internalSnapshotNames(chain) : [];
    if (internal.length > 0) return { why: `the old image holds qcow2 internal snapshots (${internal.join(", ")}), which the copy does not carry`, fix: "delete them (`qemu-img snapshot -d NAME IMAGE` while the guest is shut off), then move" };
    return undefined;
}

/** The internal snapshots of the top image in a `qemu-img info --backing-chain --output=json` answer. */
function internalSnapshotNames(chain: StepOutcome): string[] {
    if (!chain.ran || chain.exitCode !== 0) return [];
    try {
        const top = (JSON.parse(chain.stdout) as Array<{ snapshots?: Array<{ name?: unknown }> }>)[0];
        return (top?.snapshots ?? []).map((s) => String(s.name));
    } catch {
        return [];
    }
}

/** The checks before anything is copied, then the steps. Throws with the fix; nothing has run then. */
export function planMove(virsh: Virsh, read: Round, olds: AttachedDiskOutputs, news: AttachedDiskInputs, xmlFor: DiskXmlFor): MovePlan {
    const probes = moveProbes(olds, news);
    const device = `disk ${olds.target}`;
    // A move copies and pivots whatever disk is at the target, then frees the state's source: only ours.
    refuseStranger(virsh, read.snapshot(), olds.target, diskOn(olds.source));
    const running = read.snapshot().running;
    const dest = news.source;
    const format = news.format ?? "raw";
    const saved = savedStateProblem(read.probe(probes.saved), read.probe(probes.snapshots), olds.sourceType === "block" ? undefined : read.probe(probes.chain));
    if (saved) throw new InputError(`${device} of domain '${virsh.domain}' cannot move from ${olds.source} to ${dest}: ${saved.why}; nothing was copied`, virsh.context(device), saved.fix);
    if (running && blockJobState(read.probe(probes.job)) !== "none") {
        throw new InputError(`${device} of domain '${virsh.domain}' cannot move to ${dest}: a block job ${blockJobState(read.probe(probes.job)) === "running" ? "already runs on it" : "may run on it (virsh blockjob failed)"}; nothing was copied`,
            virsh.context(device), "wait for that job to finish (`virsh blockjob DOMAIN TARGET --info`) or abort it, then run pulumi up again");
    }
    const destinationOutcome = read.probe(probes.destination);
    const createsDestination = pathMissing(destinationOutcome);
    if (!createsDestination && news.moveOntoExisting !== true) {
        // The diff that chose this update found nothing there; a file made since then holds data of its own.
        throw unpreviewedChange(virsh.context(device), [`source: the preview found nothing at ${dest}, so it showed a move (an update); ${dest} exists now, ` +
            "so the change would be a swap to that file (a replacement), which the preview did not show"],
        `remove ${dest} if nothing needs it, then run pulumi up again (the move creates it); or set moveOntoExisting: true to copy the disk onto it (an image or device of exactly the disk's size)`);
    }
    const sourceType = createsDestination ? "file" : sourceKindOnHost(virsh, destinationOutcome, dest, "source");
    if (news.sourceType !== undefined && news.sourceType !== sourceType) {
        throw new InputError(createsDestination ? `source ${dest} does not exist, and a move creates only image files, not block devices`
            : `source ${dest} is a ${sourceType === "file" ? "regular file" : "block device"}, not a ${news.sourceType === "file" ? "regular file" : "block device"}`,
        virsh.context(device), createsDestination ? "create the block device first (e.g. lvcreate with the disk's size) and set moveOntoExisting: true" : `set sourceType to "${sourceType}" or leave it unset`);
    }
    const users = [...new Set([...domainsUsingFile(virsh, read.probe(probes.users), dest),
        ...(createsDestination ? [] : domainsUsingSameFile(virsh, read.probe(probes.userFiles), read.probe(probes.destinationFile), dest))])];
    if (users.length > 0) {
        throw new InputError(`source ${dest} is already in use by domain${users.length > 1 ? "s" : ""} ${users.map((d) => `'${d}'`).join(", ")} (a disk's source, an overlay's backing file or a block copy's destination): ` +
            "moving onto it would overwrite that data; nothing was copied",
            virsh.context(device), "pick a path no domain uses (`virsh domblklist DOMAIN` shows each domain's disks)");
    }
    const capacity = domblkCapacity(read.probe(probes.capacity)) ?? (running ? null : imageVirtualSize(virsh, read.probe(probes.allocation), olds.source));
    if (capacity === null) throw new VirshError(`cannot read the capacity of ${device} (virsh domblkinfo)`, virsh.context(device), "run pulumi refresh, then pulumi up again", 1);
    let copyBytes: number | undefined;
    if (createsDestination) {
        checkImageDirectory(virsh, read.probe(probes.directory), dirname(dest), dest);
        refuseDeviceFileSystem(virsh, read.probe(probes.fileSystem), dest, device);
        copyBytes = allocationBytes(virsh, olds, read.probe(olds.sourceType === "block" ? probes.allocation : probes.chain));
        const needed = copyBytes + copyMarginBytes(capacity);
        const free = freeBytesOf(read.probe(probes.free));
        if (free === undefined || free < needed) {
            throw new InputError(`${dirname(dest)} has ${free === undefined ? "an unreadable amount of" : formatBytes(free)} free, and the copy of ${olds.source} needs ${formatBytes(needed)}; nothing was copied`,
                virsh.context(device), "free space there, or move to another file system (`df -h` on the host)");
        }
    } else {
        const bytes = sourceType === "block" ? blockDeviceBytes(virsh, read.probe(probes.destinationBlock), dest)
            : imageVirtualSize(virsh, read.probe(probes.destinationImage), dest);
        if (bytes !== capacity) {
            throw new InputError(`source ${dest} holds ${formatBytes(bytes)}, and ${device} is ${formatBytes(capacity)}: a copy onto an existing ${sourceType === "block" ? "device" : "image"} needs exactly the disk's size; nothing was copied`,
                virsh.context(device), bytes > capacity
                    ? `grow the disk to ${formatBytes(bytes)} first (size: "${bytes}B", its own pulumi up), then move; or make ${sourceType === "block" ? `the device ${formatBytes(capacity)} (lvcreate -L ${capacity}B)` : `the image ${formatBytes(capacity)}`}`
                    : `make ${dest} ${formatBytes(capacity)} (lvextend -L ${capacity}B, or qemu-img resize), or leave source unset to a new path`);
        }
    }
    const facts = { createsDestination, sourceType, format, running } as const;
    const bound = news.moveTimeout ?? DEFAULT_MOVE_TIMEOUT_SECONDS;
    // A created destination is made here, empty and of the disk's size, so the copy always goes onto an existing file.
    const create = createsDestination ? [exclusiveCreateStep(dest), { host: true, args: ["qemu-img", "create", "-q", "-f", format, "--", dest, String(capacity)] }] : [];
    if (!running) {
        return { ...facts, create, copyBytes, steps: offlineMoveSteps(virsh.domain,
            { host: true, args: ["qemu-img", "convert", "-q", "-n", "-f", olds.format, "-O", format, ...(news.copyBandwidth === undefined ? [] : ["-r", `${news.copyBandwidth}M`]),
                "--", olds.source, dest], timeoutSeconds: bound },
            { args: ["update-device", `--domain=${virsh.domain}`, "--file=/dev/stdin", "--config"], stdin: xmlFor({ source: dest, sourceType, format }) }) };
    }
    return { ...facts, create, steps: [{
        args: ["blockcopy", `--domain=${virsh.domain}`, `--path=${olds.target}`, `--dest=${dest}`, `--format=${format}`, "--transient-job", "--pivot", "--wait", "--verbose",
            `--timeout=${bound}`, ...(news.copyBandwidth === undefined ? [] : [`--bandwidth=${news.copyBandwidth}`]),
            "--reuse-external", ...(sourceType === "block" ? ["--blockdev"] : [])],
        timeoutSeconds: bound + ABORT_SLACK_SECONDS,
    }] };
}

/**
 * Creates the destination only if nothing is there and prints the new file's identity in the same
 * step: the proof, for a cleanup, that the file at the path is the one this move made. Another move
 * to the same path, or a file made there since the read, makes it fail, and then nothing at the path
 * is ever removed. noclobber refuses only a regular file (and a dangling link): a device, a FIFO (whose
 * open would block) or a link to one is refused before the open, and after it if it came meanwhile.
 */
export function exclusiveCreateStep(path: string): Command {
    const notNewFile = `{ printf '%s\\n' "something other than a new file is at $1" >&2; exit 1; }`;
    return { host: true, args: ["sh", "-c", `{ [ ! -e "$1" ] && [ ! -h "$1" ]; } || ${notNewFile}; set -C; : >"$1" || exit 1; ` +
        `{ [ -f "$1" ] && [ ! -h "$1" ]; } || ${notNewFile}; stat -c '${FILE_IDENTITY_FORMAT}' -- "$1"`, "sh", path] };
}

/** The halves (the live XML while it runs, and the config) that do not name the new source in the new format, as the error says them. */
function halvesNotMoved(snapshot: DomainSnapshot, target: string, dest: string, format: DiskFormat): string[] {
    const halves: Array<["live" | "config", string]> = snapshot.running ? [["live", "live XML"], ["config", "persistent config"]] : [["config", "persistent config"]];
    return halves.flatMap(([where, name]) => {
        const disk = diskAt(snapshot, where, target);
        const seen = disk ? diskSourcePath(disk) : undefined;
        return seen === dest && (disk?.format ?? "raw") === format ? [] : [`the ${name} has ${seen ?? "no disk"}${disk ? ` (${String(disk.format ?? "raw")})` : ""}`];
    });
}

/** After the move: both halves name the new source in the new format. */
export function verifyMoved(virsh: Virsh, snapshot: DomainSnapshot, target: string, dest: string, format: DiskFormat): void {
    const wrong = halvesNotMoved(snapshot, target, dest, format);
    if (wrong.length > 0) {
        throw new VirshError(`the move of disk ${target} to ${dest} reported success, but ${wrong.join(" and ")}`, virsh.context(`disk ${target}`),
            "run pulumi refresh to see where the disk is, then pulumi up again", 1);
    }
}

/** `virsh blockjob --raw`: bytes copied and total of a running job; undefined when none runs. */
export function blockJobProgress(outcome: StepOutcome): { cur: number; end: number } | undefined {
    const match = outcome.ran && outcome.exitCode === 0 ? /\bcur=(\d+)\s+end=(\d+)/.exec(outcome.stdout) : null;
    return match ? { cur: Number(match[1]), end: Number(match[2]) } : undefined;
}

/** A disk's block job as `blockjob --raw` tells it: "unknown" when that read failed (never taken for "none"). */
export type JobState = "none" | "running" | "unknown";

export function blockJobState(outcome: StepOutcome): JobState {
    if (!outcome.ran || outcome.exitCode !== 0) return "unknown";
    return blockJobProgress(outcome) ? "running" : "none";
}

/** `stat -c '%b %B'`: a file's allocated bytes (blocks × block size); undefined when stat failed. */
export function allocatedBytesOf(outcome: StepOutcome): number | undefined {
    const match = outcome.ran && outcome.exitCode === 0 ? /^(\d+) (\d+)\s*$/.exec(outcome.stdout) : null;
    return match ? Number(match[1]) * Number(match[2]) : undefined;
}

/** How a copy's progress is read: the command, and what its answer says (bytes done, of how many). */
interface ProgressRead {
    commandLine: string;
    parse: (outcome: StepOutcome) => { cur: number; end: number } | undefined;
    /** What the numbers are: the block job's own count, or the new file's allocation so far (qemu-img convert tells no one while it runs). */
    unit: string;
}

/** Live: the block job's own count. Shut off onto a created file: its allocation against the data to copy. None for a shut-off copy onto an existing image or device. */
function progressRead(virsh: Virsh, plan: MovePlan, target: string, dest: string): ProgressRead | undefined {
    if (plan.running) return { commandLine: probeLine({ kind: "blockJob", device: target }, virsh), parse: blockJobProgress, unit: "MiB" };
    const end = plan.copyBytes;
    if (end === undefined) return undefined;
    return { commandLine: virsh.commandLine({ host: true, args: ["stat", "-c", "%b %B", "--", dest] }), unit: "MiB written",
        parse: (outcome) => { const cur = allocatedBytesOf(outcome); return cur === undefined ? undefined : { cur: Math.min(cur, end), end }; } };
}

/** While `copying` runs: the copy's progress (percent, MiB, rate) in the engine's log, every PROGRESS_INTERVAL_MS, on a channel of its own. */
async function reportProgress<T>(virsh: Virsh, target: string, dest: string, how: ProgressRead | undefined, copying: Promise<T>): Promise<T> {
    if (how === undefined) return copying;
    const script = buildStepScript([[{ commandLine: how.commandLine }]]);
    let done = false;
    const started = Date.now();
    const poll = (async () => {
        for (;;) {
            await new Promise((resolve) => setTimeout(resolve, PROGRESS_INTERVAL_MS));
            if (done) return;
            try {
                const result = await runScript(virsh, script.text, virsh.operationTimeoutSeconds * 1000);
                const progress = how.parse(script.parse(result.stdout, result.stderr)[0][0]);
                if (progress && !done && progress.end > 0) {
                    const seconds = (Date.now() - started) / 1000;
                    await info(`disk ${target} of domain '${virsh.domain}': copying to ${dest}: ${Math.floor((progress.cur / progress.end) * 100)} % ` +
                        `(${(progress.cur / MiB).toFixed(1)} of ${(progress.end / MiB).toFixed(1)} ${how.unit}, ${(progress.cur / MiB / seconds).toFixed(1)} MiB/s)`);
                }
            } catch {
                // Progress is a courtesy: a lost poll never fails the move.
            }
        }
    })();
    try {
        return await copying;
    } finally {
        done = true;
        void poll;
    }
}

/** How often the block job is read after the copy's answer was lost. */
const LOST_ANSWER_POLL_MS = 2000;
/**
 * Reads of a copy that stays ready (all copied) before it is pivoted here, and again as often
 * while it stays so: the virsh that would pivot it within half a second died with its connection
 * (SIGPIPE on its progress line).
 */
const READY_READS_BEFORE_PIVOT = 3;

/** The block copy running on `target`, as the live XML's <mirror> shows it. */
function mirrorOn(snapshot: DomainSnapshot, target: string): BlockCopyMirror | undefined {
    return snapshot.live?.mirrors.find((m) => m.target === target);
}

/** A block copy on `target` into another file than `dest`: someone else's, so this move's is over. */
function foreignJob(snapshot: DomainSnapshot, target: string, dest: string): boolean {
    const mirror = mirrorOn(snapshot, target);
    return mirror !== undefined && mirror.path !== dest;
}

/** The block copy on `target` in the live XML, when it is this move's: its mirror names `dest`. */
export function ownMirror(snapshot: DomainSnapshot, target: string, dest: string): BlockCopyMirror | undefined {
    const mirror = mirrorOn(snapshot, target);
    return mirror?.path === dest ? mirror : undefined;
}

/**
 * The copy's answer was lost (the connection dropped): the job may still run. Its disk is read
 * until no job runs (a domain no longer running has none), or the copy's own bound has passed, so
 * that the move is then verified or undone from what the host shows, never left mirroring or with a
 * partial copy behind. This move's copy (its live mirror names `dest`) that stays READY is pivoted
 * here, as its virsh would have: the move the preview showed completes. Any other job is left alone.
 */
export async function awaitJobGone(session: DomainSession, target: string, dest: string, running: boolean, boundSeconds: number): Promise<Round> {
    const { virsh } = session;
    const job: Probe = { kind: "blockJob", device: target };
    const deadline = Date.now() + (boundSeconds + ABORT_SLACK_SECONDS) * 1000;
    let readyReads = 0;
    for (let poll = 0; ; poll++) {
        try {
            const read = await session.round({ probes: running ? [job] : [] });
            if (!read.answerLost && (!running || !read.snapshot().running || blockJobState(read.probe(job)) === "none" || foreignJob(read.snapshot(), target, dest))) return read;
            if (Date.now() > deadline) return read;
            readyReads = running && !read.answerLost && ownMirror(read.snapshot(), target, dest)?.ready === true ? readyReads + 1 : 0;
            if (readyReads > 0 && readyReads % READY_READS_BEFORE_PIVOT === 0) {
                await info(`disk ${target} of domain '${virsh.domain}': the copy's answer was lost and the copy stays ready with no one to pivot it: pivoting it (virsh blockjob --pivot)`);
                await session.round({ steps: [{ args: ["blockjob", `--domain=${virsh.domain}`, `--path=${target}`, "--pivot"] }], order: ChangeOrder.Resize });
            } else if (poll % 15 === 0) {
                await info(`disk ${target} of domain '${virsh.domain}': the copy's answer was lost; reading its block job until it ends (at most ${Math.ceil((deadline - Date.now()) / 1000)} s more)`);
            }
        } catch (error) {
            if (Date.now() > deadline) throw error;
        }
        await session.sleep(LOST_ANSWER_POLL_MS);
    }
}

/** virsh blockcopy's progress lines (on stderr, with --verbose): not a cause. */
const PROGRESS_LINE = /Block Copy: \[[^\]]*\]\s*/g;

/** What virsh said of a failed copy, without its progress lines ("Copy aborted" comes on stdout, errors on stderr). */
function copySaid(outcome: StepOutcome): string {
    return outcome.ran ? `${outcome.stderr.replace(PROGRESS_LINE, "")}\n${outcome.stdout.replace(PROGRESS_LINE, "")}`.trim() : "";
}

const STARTED_DURING_MOVE = "the domain is no longer shut off";
const COPY_ANSWER_LOST = "the answer of the copy was lost (the connection dropped while it ran)";

/** Why a copy failed, as far as the host tells: virsh says only "Copy failed" or "Copy aborted". */
function causeOf(said: string, bound: number, free: number | undefined): string {
    if (said === STARTED_DURING_MOVE) return "the domain was started while it was being moved shut off (qemu-img convert), so the copy is stale";
    if (said === COPY_ANSWER_LOST) return "the connection dropped while the copy ran, and the host shows the copy did not complete";
    if (/Copy aborted/i.test(said)) return `the copy did not finish within moveTimeout (${bound} s) and was aborted`;
    if (free !== undefined && free < MiB) return `the destination's file system is full (${formatBytes(free)} free)`;
    if (/Permission denied/i.test(said)) return "permission denied on the destination";
    return "the copy failed";
}

/** The identity the exclusive create printed (the create round's first step); undefined when it did not create the file (something was there) or its answer is lost. */
export function createdByMove(plan: Pick<MovePlan, "createsDestination">, createSteps: readonly StepOutcome[]): string | undefined {
    const made = plan.createsDestination ? createSteps[0] : undefined;
    return made?.ran && made.exitCode === 0 && made.stdout.trim() !== "" ? made.stdout.trim() : undefined;
}

/** Why a destination is kept after a failed copy; undefined when it may be removed (by removeIfSameFileStep). */
export function keepReason(facts: { created: string | undefined; job: JobState; ownJob?: boolean; onOld: boolean; users: readonly string[] | undefined }): string | undefined {
    if (facts.created === undefined) return "this move did not create it (something was at the path when the copy began, or the create's answer was lost)";
    if (facts.job === "running" && facts.ownJob === false) return "a block job that is not this move's (its mirror does not name this file) runs on the disk; it was left alone";
    if (facts.job !== "none") return facts.job === "running" ? "the block job still runs after blockjob --abort" : "the block job could not be read (blockjob --raw failed), so it may still write there";
    if (!facts.onOld) return "the disk's XML does not name the old source";
    if (facts.users === undefined) return "which domains name it could not be read (virsh list or dumpxml failed)";
    if (facts.users.length > 0) return `a domain's XML names it (as a disk, a backing file or a block copy's mirror): ${facts.users.map((d) => `'${d}'`).join(", ")}`;
    return undefined;
}

/** The domains whose XML names `path` (by path, or as the same file: a source, a base, a block copy's mirror); undefined when that cannot be read. */
function namedByAnyDomain(virsh: Virsh, read: Round, path: string): string[] | undefined {
    const { users, files, file } = userProbes(path);
    try {
        return [...new Set([...domainsUsingFile(virsh, read.probe(users), path), ...domainsUsingSameFile(virsh, read.probe(files), read.probe(file), path)])];
    } catch {
        return undefined;
    }
}

/** What tells who uses a path: every domain's sources by path, every file their XML names, the path's own file. */
function userProbes(path: string): { users: Probe; files: Probe; file: Probe } {
    return { users: { kind: "diskSources" }, files: { kind: "domainFileIdentities" }, file: { kind: "sourceIdentity", path } };
}

/**
 * Removes the file this move created at `dest` (only while the path still holds it) and says what
 * was left, as a clause of the error: a lost answer of the removal is read back, never taken for done.
 */
async function removeCreatedCopy(session: DomainSession, dest: string, created: string): Promise<{ left: string; removed: boolean }> {
    const request = { steps: [removeIfSameFileStep(dest, created)], order: ChangeOrder.Removal };
    const removed = await session.round(request);
    if (removed.answerLost) {
        const probe: Probe = { kind: "path", path: dest };
        const gone = await session.round({ probes: [probe] }).then((read) => !read.answerLost && pathMissing(read.probe(probe)), () => false);
        return gone ? { left: `; the partial copy ${dest} was removed`, removed: true }
            : { left: `; the answer of the partial copy's removal was lost, and ${dest} may still be there: check, then remove it by hand`, removed: false };
    }
    return removed.failure(request)
        ? { left: `; the partial copy ${dest} was not removed (it is no longer the file this move created, or rm failed): check, then remove it by hand`, removed: false }
        : { left: `; the partial copy ${dest} was removed`, removed: true };
}

/**
 * After a failed copy: the job is aborted if it still runs, and a destination this move created
 * (its identity printed by the create) is removed once both XMLs show the guest on the old source,
 * no domain names it, and it is still that file. The error says why, and what was left.
 */
async function undoFailedCopy(session: DomainSession, olds: AttachedDiskOutputs, news: AttachedDiskInputs, plan: MovePlan, failed: VirshError, said: string, created: string | undefined): Promise<never> {
    const { virsh } = session;
    const device = `disk ${olds.target}`;
    const dest = news.source;
    const job: Probe = { kind: "blockJob", device: olds.target };
    const free: Probe = { kind: "freeBytes", path: dirname(dest) };
    const users = Object.values(userProbes(dest));
    let read = await session.round({ probes: plan.running ? [job, free, ...users] : [free, ...users] });
    // A domain that no longer runs has no block job.
    const jobNow = (r: Round): JobState => (plan.running && r.snapshot().running ? blockJobState(r.probe(job)) : "none");
    let jobState = jobNow(read);
    // Only this move's copy is aborted: a job whose mirror names another file is someone else's.
    const ownJob = jobState !== "running" || ownMirror(read.snapshot(), olds.target, dest) !== undefined;
    if (jobState !== "none" && ownJob) {
        // The abort's own answer is not trusted (a job mid-pivot refuses it): the job is read again after it.
        await session.round({ steps: [{ args: ["blockjob", `--domain=${virsh.domain}`, `--path=${olds.target}`, "--abort"] }], order: ChangeOrder.Resize });
        read = await session.round({ probes: [job, free, ...users] });
        jobState = jobNow(read);
    }
    const snapshot = read.snapshot();
    const onOld = (["live", "config"] as const).filter((w) => w === "config" || snapshot.running)
        .every((where) => { const d = diskAt(snapshot, where, olds.target); return d !== undefined && diskSourcePath(d) === olds.source; });
    const cause = causeOf(said, news.moveTimeout ?? DEFAULT_MOVE_TIMEOUT_SECONDS, freeBytesOf(read.probe(free)));
    let left = "";
    let cleared = !plan.createsDestination;
    if (plan.createsDestination) {
        const keep = keepReason({ created, job: jobState, ownJob, onOld, users: created === undefined ? [] : namedByAnyDomain(virsh, read, dest) });
        if (keep === undefined && created !== undefined) {
            ({ left, removed: cleared } = await removeCreatedCopy(session, dest, created));
        } else {
            left = created === undefined ? `; ${dest} was left as it is: ${keep}` : `; the partial copy ${dest} was kept (${keep}): check, then remove it by hand`;
        }
    }
    const settled = onOld && jobState === "none";
    throw new VirshError(`moving ${device} from ${olds.source} to ${dest}: ${cause}; the guest ${settled ? `stays on ${olds.source}, untouched` : "may not be on the old source: run pulumi refresh"}${left}`,
        virsh.context(device, said || undefined), settled
            ? (cause.startsWith("the copy did not finish") ? "raise moveTimeout (or copyBandwidth), then run pulumi up again"
                : said === STARTED_DURING_MOVE ? "run pulumi up again: a running domain's disk moves live (blockcopy)"
                    : said === COPY_ANSWER_LOST ? (cleared ? "run pulumi up again: the move starts over" : `check ${dest} as said, then run pulumi up again`)
                        : "fix the cause at the destination, then run pulumi up again")
            : "run pulumi refresh, then pulumi up again", failed.exitCode);
}

/** A shut-off move's domain now runs, on the old source (its live XML does not name the copy). */
export function startedOnOldSource(plan: Pick<MovePlan, "running">, snapshot: DomainSnapshot, olds: Pick<AttachedDiskOutputs, "target" | "source">): boolean {
    if (plan.running || !snapshot.running) return false;
    const live = diskAt(snapshot, "live", olds.target);
    return live !== undefined && diskSourcePath(live) === olds.source;
}

export interface MovedDisk {
    snapshot: DomainSnapshot;
    sourceType: "file" | "block";
    format: DiskFormat;
    imageCreated: boolean;
    imageIdentity?: string;
}

/**
 * The destination a move makes, in a round of its own before the copy: its identity, known before
 * the long step whose answer may be lost, is what lets a failed copy remove it. Undefined when the
 * copy goes onto an existing image or device. Throws when the create was refused or failed (what it
 * made removed), or its answer was lost (nothing copied; the path may hold an empty image then).
 */
async function createDestination(session: DomainSession, olds: AttachedDiskOutputs, news: AttachedDiskInputs, plan: MovePlan): Promise<string | undefined> {
    if (plan.create.length === 0) return undefined;
    const { virsh } = session;
    const device = `disk ${olds.target}`;
    const request = { steps: plan.create, order: ChangeOrder.Resize };
    const lost = new VirshError(`moving ${device} from ${olds.source} to ${news.source}: the answer of the step that creates ${news.source} was lost (the connection dropped); nothing was copied, ` +
        `and the guest stays on ${olds.source}; ${news.source} may now hold an empty image this move made`, virsh.context(device),
    `check ${news.source} on the host (an empty image of the disk's size, nothing else uses it: remove it), then run pulumi up again`, 1);
    const round = await session.round(request).catch((error: unknown) => { throw error instanceof HostUnreachableError && error.outcomeUnknown ? lost : error; });
    const [exclusive] = round.steps;
    if (exclusive?.ran === true && exclusive.exitCode !== 0) {
        throw new InputError(`source ${news.source} exists on the host now (a file, a device, a FIFO or a symbolic link), although the read a moment before found nothing there: ` +
            "nothing was copied, and it was left as it is", virsh.context(device, exclusive.stderr.trim()),
        "check what is there (another move to the same path?); remove it if nothing needs it, or set moveOntoExisting: true onto an image of the disk's size");
    }
    if (round.answerLost) throw lost;
    const created = createdByMove(plan, round.steps);
    const failure = round.failure(request, { device });
    if (failure) {
        // qemu-img create failed on the file the exclusive create made: no copy ran, so no job is this move's.
        const { left } = created === undefined ? { left: `; ${news.source} was left as it is` } : await removeCreatedCopy(session, news.source, created);
        throw new VirshError(`moving ${device} from ${olds.source} to ${news.source}: creating the new image failed (qemu-img create); nothing was copied, the guest stays on ${olds.source}${left}`,
            virsh.context(device, failure.summary), "check that the directory is writable and qemu-img can create images there, then run pulumi up again", failure.exitCode);
    }
    return created;
}

/**
 * A shut-off copy's answer lost with the config still on the old source: the orphaned remote
 * script may still convert into the new file and then point the config at it, so the file is kept
 * (removing it then would leave the config naming a missing file, and the guest unable to start).
 */
function offlineCopyLost(virsh: Virsh, olds: AttachedDiskOutputs, news: AttachedDiskInputs): VirshError {
    return new VirshError(`moving disk ${olds.target} (domain shut off) from ${olds.source} to ${news.source}: ${COPY_ANSWER_LOST}; qemu-img convert and then the config's update may still ` +
        `run on the host, so ${news.source} is kept; the guest's data is on ${olds.source}, untouched`, virsh.context(`disk ${olds.target}`),
    `once no qemu-img runs on ${news.source} (pgrep -a qemu-img on the host), run pulumi refresh: it shows which file the config names; then pulumi up (remove ${news.source} first if the config still names ${olds.source})`, 1);
}

/** The host stayed unreachable through the copy's bound after its answer was lost: what may still run, and what not to remove. */
function unreachableAfterLostCopy(virsh: Virsh, olds: AttachedDiskOutputs, news: AttachedDiskInputs, plan: MovePlan, error: HostUnreachableError): VirshError {
    const still = plan.running ? `its block copy may still mirror into ${news.source}` : `qemu-img convert and then the config's update may still run on the host`;
    return new VirshError(`moving disk ${olds.target} from ${olds.source} to ${news.source}: ${COPY_ANSWER_LOST}, and the host stayed unreachable for the copy's whole bound; ${still}, ` +
        `so keep ${news.source} until you have looked`, virsh.context(`disk ${olds.target}`, error.summary),
    `once the host answers: virsh blockjob ${virsh.domain} ${olds.target} --info and virsh domblklist ${virsh.domain} --inactive show where the disk is; then pulumi refresh and pulumi up`, 1);
}

/** One read, the checks, the destination's create, the copy (with progress), the verify. */
export async function moveDisk(session: DomainSession, olds: AttachedDiskOutputs, news: AttachedDiskInputs,
    xmlFor: DiskXmlFor): Promise<MovedDisk> {
    const { virsh } = session;
    const device = `disk ${olds.target}`;
    const read = await session.round({ probes: Object.values(moveProbes(olds, news)) });
    const plan = planMove(virsh, read, olds, news, xmlFor);
    const created = await createDestination(session, olds, news, plan);
    const request = { steps: plan.steps, order: ChangeOrder.Resize };
    // A host that stays unreachable after the copy's answer was lost: the same as a lost answer, read until the copy's bound.
    const round = await reportProgress(virsh, olds.target, news.source, progressRead(virsh, plan, olds.target, news.source),
        session.round(request).catch((error: unknown) => { if (error instanceof HostUnreachableError && error.outcomeUnknown) return undefined; throw error; }));
    if (round === undefined || round.answerLost) {
        const after = await awaitJobGone(session, olds.target, news.source, plan.running, news.moveTimeout ?? DEFAULT_MOVE_TIMEOUT_SECONDS)
            .catch((error: unknown) => { throw error instanceof HostUnreachableError ? unreachableAfterLostCopy(virsh, olds, news, plan, error) : error; });
        if (halvesNotMoved(after.snapshot(), olds.target, news.source, plan.format).length === 0) return finishMove(session, olds, news, plan, after.snapshot(), created, xmlFor);
        if (!plan.running) throw offlineCopyLost(virsh, olds, news);
        const lost = new VirshError(COPY_ANSWER_LOST, virsh.context(device), "run pulumi refresh, then pulumi up again", 1);
        return undoFailedCopy(session, olds, news, plan, lost, lost.summary, created);
    }
    const failure = round.failure(request, { device });
    const failedAt = round.steps.findIndex((o) => o.ran && o.exitCode !== 0);
    const said = isStillShutOffStep(plan.steps[failedAt]) ? STARTED_DURING_MOVE : copySaid(round.steps[failedAt] ?? { ran: false });
    if (failure) return undoFailedCopy(session, olds, news, plan, failure, said, created);
    return finishMove(session, olds, news, plan, round.snapshot(), created, xmlFor);
}

/**
 * The copy is done: both XMLs checked. A shut-off move whose domain was started after the last
 * domstate and before update-device took effect runs on the old source while its config names the
 * copy, stale from then on: the old <disk> goes back into the config, and the copy is undone.
 */
async function finishMove(session: DomainSession, olds: AttachedDiskOutputs, news: AttachedDiskInputs, plan: MovePlan, snapshot: DomainSnapshot, created: string | undefined, xmlFor: DiskXmlFor): Promise<MovedDisk> {
    if (startedOnOldSource(plan, snapshot, olds)) {
        const { virsh } = session;
        const request = { steps: [{ args: ["update-device", `--domain=${virsh.domain}`, "--file=/dev/stdin", "--config"], stdin: xmlFor(olds) }], order: ChangeOrder.Resize };
        const back = await session.round(request);
        const failure = back.failure(request, { device: `disk ${olds.target}` });
        if (failure) {
            throw new VirshError(`disk ${olds.target} of domain '${virsh.domain}' was started while it was being moved shut off: it runs on ${olds.source}, and its config names the stale copy ${news.source}; putting the old source back in the config failed`,
                virsh.context(`disk ${olds.target}`, failure.summary), `put ${olds.source} back in the config by hand (virsh edit ${virsh.domain}) before the next start, then run pulumi refresh`, failure.exitCode);
        }
        return undoFailedCopy(session, olds, news, plan, new VirshError(STARTED_DURING_MOVE, virsh.context(`disk ${olds.target}`), "run pulumi up again", 1), STARTED_DURING_MOVE, created);
    }
    verifyMoved(session.virsh, snapshot, olds.target, news.source, plan.format);
    return { snapshot, sourceType: plan.sourceType, format: plan.format, imageCreated: plan.createsDestination, imageIdentity: created };
}

/** After a verified move (and the size and limits on the new source): the old image as afterMove says. */
export async function releaseMovedAway(session: DomainSession, olds: AttachedDiskOutputs, news: AttachedDiskInputs): Promise<void> {
    if (news.afterMove !== "delete") return;
    if (olds.imageCreated) await releaseImage(session, { ...olds, deleteImage: true }, false);
    else await warn(`afterMove "delete" kept ${olds.source}: this disk did not create it`);
}
