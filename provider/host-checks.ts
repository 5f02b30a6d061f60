/**
 * Named checks that need the host, read from the answers of probes (virsh/probes.ts): is this
 * path a file or a block device, does this bridge or network exist, which other domain uses this
 * MAC, how big is the host. Each throws an InputError that names the field and the fix.
 */
import { parseCpuList } from "./cpu-list";
import { InputError, VirshError } from "./errors";
import { markedDomain } from "./virsh/probes";
import type { StepOutcome } from "./virsh/step-script";
import { hintFor, SUDO_REFUSED } from "./virsh/stderr-hints";
import type { Virsh } from "./virsh/virsh";

export type SourceKind = "file" | "block";

/**
 * A host command's answer. A failed exit is an answer ("no such file"), but sudo's own refusal
 * (or a check that never ran) is not, so it is thrown.
 */
function answered(virsh: Virsh, what: string, outcome: StepOutcome): StepOutcome & { ran: true } {
    if (!outcome.ran) {
        throw new VirshError(`the host check ${what} did not run`, virsh.context(), "run the same pulumi command again", 1);
    }
    if (outcome.exitCode !== 0 && SUDO_REFUSED.test(outcome.stderr)) {
        const stderr = outcome.stderr.trim();
        throw new VirshError(`sudo refused to run ${what} on the host (exit ${outcome.exitCode})`, virsh.context(undefined, stderr),
            hintFor(stderr, "allow this user passwordless sudo, or set connection.sudo to false"), outcome.exitCode);
    }
    return outcome;
}

/** stat's own words for ENOENT: the one failure that means "nothing is there". */
const NO_SUCH_FILE = /No such file or directory/;

/** The path is not there (stat said ENOENT); any other failure (a loop, a hung mount, EACCES) is not "missing". */
export function pathMissing(outcome: StepOutcome): boolean {
    return outcome.ran && outcome.exitCode !== 0 && NO_SUCH_FILE.test(outcome.stderr) && !SUDO_REFUSED.test(outcome.stderr);
}

/** A stat that failed for another reason than "no such file": the path may hold data, so nothing is done to it. */
function statFailed(virsh: Virsh, result: StepOutcome & { ran: true }, path: string, field: string): VirshError {
    const stderr = result.stderr.trim();
    return new VirshError(`cannot tell what ${field} ${path} is: stat failed (exit ${result.exitCode}): ${stderr || "no message"}; nothing was created or changed`,
        virsh.context(field, stderr), `fix what stat says on the host (a symbolic link loop, a hung or stale NFS mount, a permission: \`stat -L ${path}\` shows it), then run again`,
        result.exitCode);
}

export function sourceKindOnHost(virsh: Virsh, outcome: StepOutcome, path: string, field: string): SourceKind {
    const result = answered(virsh, "stat", outcome);
    const kind = result.stdout.trim();
    if (result.exitCode !== 0 && !pathMissing(result)) throw statFailed(virsh, result, path, field);
    if (result.exitCode !== 0) {
        throw new InputError(`${field} ${path} does not exist on the host`, virsh.context(field, result.stderr.trim()),
            `create it first (qemu-img create -f raw ${path} 10G) or fix the path`);
    }
    if (kind === "block special file") return "block";
    if (kind === "regular file" || kind === "regular empty file") return "file";
    throw new InputError(`${field} ${path} is a ${kind}, not a file or block device`, virsh.context(field), "point it at an image file or a block device");
}

export function checkBridgeExists(virsh: Virsh, outcome: StepOutcome, bridge: string): void {
    if (answered(virsh, "test", outcome).exitCode !== 0) {
        throw new InputError(`source: no Linux bridge named '${bridge}' on the host`, virsh.context(`bridge ${bridge}`),
            `create it (ip link add ${bridge} type bridge && ip link set ${bridge} up) or use type "network" for a libvirt network`);
    }
}

export function checkNetworkExists(virsh: Virsh, outcome: StepOutcome, network: string): void {
    const result = answered(virsh, "virsh net-info", outcome);
    if (result.exitCode !== 0) {
        throw new InputError(`source: no libvirt network named '${network}'`, virsh.context(`network ${network}`, result.stderr.trim()),
            "`virsh net-list --all` lists them; or use type \"bridge\" for a host bridge");
    }
}

/** The domain (other than ours) whose interface has this MAC, if any. */
export function domainUsingMac(virsh: Virsh, outcome: StepOutcome, mac: string): string | undefined {
    const result = answered(virsh, "virsh domiflist", outcome);
    let owner: string | undefined;
    for (const line of result.stdout.split("\n")) {
        const marked = markedDomain(line);
        if (marked !== undefined) owner = marked;
        else if (owner !== undefined && owner !== virsh.domain && line.toLowerCase().includes(mac.toLowerCase())) return owner;
    }
    return undefined;
}

export interface HostSize {
    cpus?: number;
    memoryKiB?: number;
}

export function hostSize(virsh: Virsh, outcome: StepOutcome): HostSize {
    const info = answered(virsh, "virsh nodeinfo", outcome);
    if (info.exitCode !== 0) throw virsh.failure({ args: ["nodeinfo"] }, info);
    const cpus = Number(/^CPU\(s\):\s*(\d+)/m.exec(info.stdout)?.[1]);
    const memoryKiB = Number(/^Memory size:\s*(\d+)\s*KiB/m.exec(info.stdout)?.[1]);
    return { cpus: cpus || undefined, memoryKiB: memoryKiB || undefined };
}

/** A disk's capacity in bytes as QEMU reports it (`domblkinfo`); null when it could not be read. */
export function domblkCapacity(outcome: StepOutcome): number | null {
    const match = outcome.ran && outcome.exitCode === 0 ? /^Capacity:\s*(\d+)/m.exec(outcome.stdout) : null;
    return match ? Number(match[1]) : null;
}

/** Which file a path holds now (FILE_IDENTITY_FORMAT), or "missing"; throws when stat fails otherwise. */
export function fileIdentityOnHost(virsh: Virsh, outcome: StepOutcome, path: string): string {
    const result = answered(virsh, "stat", outcome);
    if (pathMissing(result)) return "missing";
    if (result.exitCode !== 0) throw statFailed(virsh, result, path, "source");
    return result.stdout.trim();
}

/** In an answer of per-domain sections (each after its markedDomain line), the domains with a line that `matches`. */
function domainsWithLine(answer: string, matches: (line: string) => boolean): string[] {
    const users = new Set<string>();
    let owner: string | undefined;
    for (const line of answer.split("\n")) {
        const marked = markedDomain(line);
        if (marked !== undefined) owner = marked;
        else if (owner !== undefined && matches(line)) users.add(owner);
    }
    return [...users];
}

/** The domains whose live XML or config names `path` as a disk source (the diskSources probe); throws when it could not read them all. */
export function domainsUsingFile(virsh: Virsh, outcome: StepOutcome, path: string): string[] {
    const result = answered(virsh, "virsh domblklist", outcome);
    if (result.exitCode !== 0) {
        const stderr = result.stderr.trim();
        throw new VirshError(`cannot tell which domains use ${path} (virsh list or domblklist failed, exit ${result.exitCode}), so the image is kept`,
            virsh.context("source", stderr), hintFor(stderr, "run the same pulumi command again; the disk is already detached"), result.exitCode);
    }
    return domainsWithLine(result.stdout, (line) => /^\s*\S+\s+(.*?)\s*$/.exec(line)?.[1] === path);
}

/** What a SOURCE_IDENTITY_FORMAT line names: a block device by its device number (any node or link to it), anything else by st_dev:st_ino. */
export function sourceIdentityKey(line: string): string | undefined {
    const [type, inode, rdev] = line.trim().split("|");
    if (!type || !inode || !rdev) return undefined;
    return type === "block special file" ? `block ${rdev}` : `file ${inode}`;
}

/** Two `sourceIdentity` answers name one file or device (by two paths, or one); a stat that failed names none. */
export function sameFileAnswers(a: StepOutcome, b: StepOutcome): boolean {
    const key = (o: StepOutcome) => (o.ran && o.exitCode === 0 ? sourceIdentityKey(o.stdout) : undefined);
    return key(a) !== undefined && key(a) === key(b);
}

/**
 * The domains with a disk source that is the same file or device as `identity` (a sourceIdentity
 * answer), whatever path names it, as a source, a base in a backing chain or a block copy's mirror (the
 * domainFileIdentities probe); throws when it could not read them all.
 */
export function domainsUsingSameFile(virsh: Virsh, outcome: StepOutcome, identity: StepOutcome, path: string, consequence = "nothing was copied"): string[] {
    const key = sourceIdentityKey(answered(virsh, "stat", identity).stdout);
    if (key === undefined) return [];
    const result = answered(virsh, "virsh dumpxml", outcome);
    if (result.exitCode !== 0) {
        const stderr = result.stderr.trim();
        throw new VirshError(`cannot tell which domains use ${path} (virsh list or dumpxml failed, exit ${result.exitCode}); ${consequence}`,
            virsh.context("source", stderr), hintFor(stderr, "run the same pulumi command again"), result.exitCode);
    }
    return domainsWithLine(result.stdout, (line) => sourceIdentityKey(line) === key);
}

/** An image file's virtual size in bytes (`qemu-img info -f FORMAT --output=json`); throws when it cannot be read. */
export function imageVirtualSize(virsh: Virsh, outcome: StepOutcome, path: string): number {
    const result = answered(virsh, "qemu-img info", outcome);
    let size: unknown;
    try {
        size = result.exitCode === 0 ? (JSON.parse(result.stdout) as Record<string, unknown>)["virtual-size"] : undefined;
    } catch {
        size = undefined;
    }
    if (typeof size !== "number") {
        throw new VirshError(`cannot read the size of the image ${path} (qemu-img info)`, virsh.context("source", result.stderr.trim()),
            "check that format names the image's real format (raw or qcow2; it is never guessed from the file's bytes) and that qemu-utils is installed on the host", result.exitCode || 1);
    }
    return size;
}

/** A block device's size in bytes (`blockdev --getsize64`). */
export function blockDeviceBytes(virsh: Virsh, outcome: StepOutcome, path: string): number {
    const result = answered(virsh, "blockdev", outcome);
    const bytes = Number(result.stdout.trim());
    if (result.exitCode !== 0 || !Number.isInteger(bytes)) {
        throw new VirshError(`cannot read the size of the block device ${path} (blockdev --getsize64)`, virsh.context("source", result.stderr.trim()),
            "check the device path and that the user may read it (or set connection.sudo)", result.exitCode || 1);
    }
    return bytes;
}

/** A missing source can be created only in a directory that exists. */
export function checkImageDirectory(virsh: Virsh, outcome: StepOutcome, directory: string, source: string): void {
    const result = answered(virsh, "stat", outcome);
    if (result.exitCode !== 0 && !pathMissing(result)) throw statFailed(virsh, result, directory, "source's directory");
    if (result.exitCode !== 0 || result.stdout.trim() !== "directory") {
        throw new InputError(`source ${source} does not exist, and its directory ${directory} ${result.exitCode !== 0 ? "does not exist either" : `is a ${result.stdout.trim()}`}`,
            virsh.context("source", result.stderr.trim()), `create the directory on the host first (mkdir -p ${directory}), or fix the path; size creates only the image file`);
    }
}

/** The hypervisor's vCPU limit per guest (`virsh maxvcpus`); undefined when it names none. */
export function hypervisorMaxVcpus(virsh: Virsh, outcome: StepOutcome): number | undefined {
    const result = answered(virsh, "virsh maxvcpus", outcome);
    if (result.exitCode !== 0) throw virsh.failure({ args: ["maxvcpus"] }, result);
    const max = Number(result.stdout.trim());
    return Number.isInteger(max) && max > 0 ? max : undefined;
}

/** One statistic of `dommemstat`, in KiB; null when it reports none. */
function memoryStatKiB(outcome: StepOutcome, name: "actual" | "rss"): number | null {
    const match = outcome.ran ? new RegExp(`^${name}\\s+(\\d+)`, "m").exec(outcome.stdout) : null;
    return match ? Number(match[1]) : null;
}

/** What the guest's balloon holds now (`dommemstat` actual), in KiB; null when it reports none. */
export function balloonActualKiB(outcome: StepOutcome): number | null {
    return memoryStatKiB(outcome, "actual");
}

/** What the running QEMU process holds now (`dommemstat` rss, its resident memory), in KiB; null when it reports none. */
export function qemuRssKiB(outcome: StepOutcome): number | null {
    return memoryStatKiB(outcome, "rss");
}

/** The CPUs of `virsh nodecpumap --pretty`'s "CPU map:" line; undefined when there is none that parses. */
export function cpuMapOf(stdout: string): number[] | undefined {
    const line = /^CPU map:[ \t]*(.*)$/m.exec(stdout);
    try {
        return line ? parseCpuList(line[1].trim()) : undefined;
    } catch {
        return undefined;
    }
}

/** The host's online CPUs (the hostCpus probe); throws when they could not be read. */
export function onlineHostCpus(virsh: Virsh, outcome: StepOutcome): number[] {
    const result = answered(virsh, "virsh nodecpumap", outcome);
    const cpus = result.exitCode === 0 ? cpuMapOf(result.stdout) : undefined;
    if (cpus) return cpus;
    throw new VirshError(`cannot read the host's online CPUs (virsh nodecpumap --pretty: ${JSON.stringify(result.stdout.trim())}), which a pin is checked against; nothing was changed`,
        virsh.context("cpuTune", result.stderr.trim()), hintFor(result.stderr.trim(), "check that libvirtd answers on the host, then run again"), result.exitCode || 1);
}

/** Whether the host runs cgroup v2 (the cgroupFs probe); throws when that could not be read. */
export function cgroupV2(virsh: Virsh, outcome: StepOutcome): boolean {
    const result = answered(virsh, "stat -fc %T /sys/fs/cgroup", outcome);
    if (result.exitCode === 0) return result.stdout.trim() === "cgroup2fs";
    throw new VirshError("cannot tell the host's cgroup version (stat -fc %T /sys/fs/cgroup failed), which decides the ranges of cpuTune.shares and memoryTune.softLimit; nothing was changed",
        virsh.context("cpuTune", result.stderr.trim()), "check that the host mounts cgroups at /sys/fs/cgroup, then run again", result.exitCode);
}
