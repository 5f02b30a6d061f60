/**
 * The host facts an operation may need to decide, read in the same exec as the domain itself:
 * what a path is, whether a bridge or libvirt network exists, which domains use a MAC, the host's
 * size, the guest's balloon. Each probe is one command line; equal probes of a batch run once.
 */
import { GET_MEMORY_BLOCKS } from "../guest-view";
import { shellCommand } from "../quoting";
import type { Virsh } from "./virsh";

export type Probe =
    | { kind: "path"; path: string }
    | { kind: "bridge"; name: string }
    | { kind: "network"; name: string }
    | { kind: "nodeinfo" }
    /** The hypervisor's vCPU limit for a guest (`virsh maxvcpus`). */
    | { kind: "maxvcpus" }
    /** With `settleKiB`, the host waits (briefly, in the same exec) for the balloon to reach it. */
    | { kind: "balloon"; settleKiB?: number }
    | { kind: "macOwners" }
    /** The running domain's XML once its virtio-mem device's `<current>` is `settleKiB` (or after a short wait). */
    | { kind: "virtioMemSettle"; settleKiB: number }
    /** A disk's capacity as QEMU reports it (`domblkinfo --bytes`, by target). */
    | { kind: "domblkinfo"; device: string }
    /** An image file's virtual size read as `format` (`qemu-img info -f FORMAT`: never probed from its bytes). */
    | { kind: "imageInfo"; path: string; format: "raw" | "qcow2" }
    /** Which file is at a path: device, inode and birth time (`stat -c`, the path itself, not a link's target). */
    | { kind: "fileIdentity"; path: string }
    /** Every domain's disk sources, live and in the config (`domblklist` of each), to tell who uses a file. */
    | { kind: "diskSources" }
    /**
     * Every file a domain's XML names (live and config: disk sources, their <backingStore> chains, a
     * block job's <mirror>; a shut-off domain's chains from qemu-img, as libvirt lists none then), as
     * the files they are (`stat -L`, SOURCE_IDENTITY_FORMAT a line), so that another path to the same
     * file (a symbolic link, /dev/mapper vs /dev/vg), an overlay's base or a copy's destination is seen.
     */
    | { kind: "domainFileIdentities" }
    /** A path's file as SOURCE_IDENTITY_FORMAT tells it (`stat -L`). */
    | { kind: "sourceIdentity"; path: string }
    /** An image and its backing files (`qemu-img info --backing-chain`, a JSON array, top first). */
    | { kind: "imageChain"; path: string; format: string }
    /** The type of the file system holding a directory (`df --output=fstype`: devtmpfs, ext4, …). */
    | { kind: "fileSystemType"; path: string }
    /** The bytes free to an unprivileged writer in the file system holding a directory (`df -P -B1`). */
    | { kind: "freeBytes"; path: string }
    /** A disk's block job, raw (`virsh blockjob --raw`: cur and end in bytes; nothing when none runs). */
    | { kind: "blockJob"; device: string }
    /** The domain's facts (`virsh dominfo`): "Managed save: yes" when a saved state waits for its next start. */
    | { kind: "dominfo" }
    /** The domain's libvirt snapshots, one name a line (`virsh snapshot-list --name`). */
    | { kind: "snapshotNames" }
    /** A block device's size in bytes (`blockdev --getsize64`). */
    | { kind: "blockSize"; path: string }
    /** A disk's I/O limits as QEMU applies them (`blkdeviotune`, the running guest's when it runs). */
    | { kind: "blkdeviotune"; device: string }
    /** The host's online CPUs (`virsh nodecpumap --pretty`: "CPU map: 0-3"), which a pin may name. */
    | { kind: "hostCpus" }
    /** The file system type of /sys/fs/cgroup (`stat -f`): "cgroup2fs" on a cgroup v2 host, where libvirt maps tuning to other files and ranges. */
    | { kind: "cgroupFs" }
    /** The vCPUs the guest itself has online, from its agent (`virsh guestvcpus`). */
    | { kind: "guestVcpus" }
    /** The guest's memory blocks and which are online, from its agent (`guest-get-memory-blocks`). */
    | { kind: "memoryBlocks" }
    /**
     * The persistent config with its secrets (a console password), the only text a `virsh define`
     * may be written from: without them the define would drop them. Used for that alone, never stored.
     */
    | { kind: "definableConfig" };

export function probeKey(probe: Probe): string {
    return JSON.stringify(probe);
}

/** Marks each domain's section in the macOwners and diskSources answers. */
export const MAC_OWNER_MARK = "@@domain ";

/**
 * The domain a marked line names, or undefined for any other line. Trimmed at the end: an older
 * virsh pads the name in `list --uuid --name`, and a resource's own domain cannot end in spaces.
 */
export function markedDomain(line: string): string | undefined {
    return line.startsWith(MAC_OWNER_MARK) ? line.slice(MAC_OWNER_MARK.length).trimEnd() : undefined;
}
/** `stat -c` format of a file's identity: st_dev:st_ino, then the birth time to the nanosecond ("-" where the file system keeps none). */
export const FILE_IDENTITY_FORMAT = "%d:%i %w";
/** `stat -L -c` format of what a disk source is: its type, st_dev:st_ino, and the device number a block device names. */
export const SOURCE_IDENTITY_FORMAT = "%F|%d:%i|%t:%T";
/** A guest's balloon may stop a page table short of the target; within this it has followed. */
export const BALLOON_TOLERANCE_KIB = 1024;
/** A guest agent answers at once or not at all: a silent one must not hold the exec for operationTimeout. */
export const AGENT_TIMEOUT_SECONDS = 10;
/** The in-exec wait for a balloon: this many reads, 0.2 s apart (about 3 s on a slow host). */
const BALLOON_SETTLE_READS = 15;
/** Reads of every domain's disks before "cannot tell who uses the file": a domain may vanish mid-read. */
const DISK_SOURCES_READS = 3;

/**
 * Every domain as "UUID NAME" lines, read one by one into $u and $d (the name byte for byte). The
 * reads go by UUID: virsh looks a --domain up as an ID first, so by name a shut-off domain called
 * "5" would be read as the running domain whose ID is 5, and its disks never seen.
 */
const DOMAINS_BY_UUID = ["list", "--all", "--uuid", "--name"];
const EACH_DOMAIN = `IFS= read -r line; do [ -n "$line" ] || continue; u=\${line%% *}; d=\${line#* }`;

/** The quoted command line that answers a probe on the host of `virsh`'s domain. */
export function probeLine(probe: Probe, virsh: Virsh): string {
    switch (probe.kind) {
        case "path": return virsh.commandLine({ host: true, args: ["stat", "-L", "-c", "%F", "--", probe.path] });
        case "bridge": return virsh.commandLine({ host: true, args: ["test", "-d", `/sys/class/net/${probe.name}/bridge`] });
        case "network": return virsh.commandLine({ args: ["net-info", `--network=${probe.name}`] });
        case "nodeinfo": return virsh.commandLine({ args: ["nodeinfo"] });
        case "maxvcpus": return virsh.commandLine({ args: ["maxvcpus"] });
        // libvirt's own view, of the host its URI names (not the SSH host's sysfs), and no sudo beyond virsh's.
        case "hostCpus": return virsh.commandLine({ args: ["nodecpumap", "--pretty"] });
        case "cgroupFs": return virsh.commandLine({ host: true, unprivileged: true, args: ["stat", "-fc", "%T", "/sys/fs/cgroup"] });
        case "balloon": {
            const read = virsh.commandLine({ args: ["dommemstat", `--domain=${virsh.domain}`] });
            if (probe.settleKiB === undefined) return read;
            // The guest follows a new balloon target within a second or so: waiting here saves round trips.
            const [low, high] = [probe.settleKiB - BALLOON_TOLERANCE_KIB, probe.settleKiB + BALLOON_TOLERANCE_KIB].map(Math.round);
            return `n=0; while :; do out=$(${read} </dev/null); a=$(printf '%s\n' "$out" | sed -n 's/^actual[[:space:]]*//p'); ` +
                `case $a in ''|*[!0-9]*) ;; *) [ "$a" -ge ${low} ] && [ "$a" -le ${high} ] && break ;; esac; ` +
                `n=$((n+1)); [ "$n" -ge ${BALLOON_SETTLE_READS} ] && break; sleep 0.2; done; printf '%s\n' "$out"`;
        }
        case "blkdeviotune": return virsh.commandLine({ args: ["blkdeviotune", `--domain=${virsh.domain}`, `--device=${probe.device}`] });
        case "domblkinfo": return virsh.commandLine({ args: ["domblkinfo", `--domain=${virsh.domain}`, `--device=${probe.device}`] });
        case "imageInfo": return virsh.commandLine({ host: true, args: ["qemu-img", "info", "-f", probe.format, "-U", "--output=json", "--", probe.path] });
        case "fileIdentity": return virsh.commandLine({ host: true, args: ["stat", "-c", FILE_IDENTITY_FORMAT, "--", probe.path] });
        case "sourceIdentity": return virsh.commandLine({ host: true, args: ["stat", "-L", "-c", SOURCE_IDENTITY_FORMAT, "--", probe.path] });
        case "domainFileIdentities": return domainFileIdentitiesLine(virsh);
        case "imageChain": return virsh.commandLine({ host: true, args: ["qemu-img", "info", "-f", probe.format, "-U", "--backing-chain", "--output=json", "--", probe.path] });
        case "fileSystemType": return virsh.commandLine({ host: true, args: ["df", "--output=fstype", "--", probe.path] });
        case "freeBytes": return virsh.commandLine({ host: true, args: ["df", "-P", "-B1", "--", probe.path] });
        case "blockJob": return virsh.commandLine({ args: ["blockjob", `--domain=${virsh.domain}`, `--path=${probe.device}`, "--raw"] });
        case "dominfo": return virsh.commandLine({ args: ["dominfo", `--domain=${virsh.domain}`] });
        case "snapshotNames": return virsh.commandLine({ args: ["snapshot-list", `--domain=${virsh.domain}`, "--name"] });
        case "blockSize": return virsh.commandLine({ host: true, args: ["blockdev", "--getsize64", probe.path] });
        case "guestVcpus": return virsh.commandLine({ args: ["guestvcpus", `--domain=${virsh.domain}`], timeoutSeconds: AGENT_TIMEOUT_SECONDS });
        case "definableConfig": return virsh.commandLine({ args: definableConfigArgs(virsh.domain) });
        case "memoryBlocks": return virsh.commandLine({ args: agentCommand(virsh, GET_MEMORY_BLOCKS), timeoutSeconds: AGENT_TIMEOUT_SECONDS });
        case "virtioMemSettle": {
            // The guest plugs or unplugs within a second or two: waiting here saves round trips.
            const read = virsh.commandLine({ args: ["dumpxml", `--domain=${virsh.domain}`] });
            const mark = `<current unit='KiB'>${Math.round(probe.settleKiB)}</current>`;
            return `n=0; while :; do out=$(${read} </dev/null); case $out in *"${mark}"*) break ;; esac; ` +
                `n=$((n+1)); [ "$n" -ge ${BALLOON_SETTLE_READS} ] && break; sleep 0.2; done; printf '%s\n' "$out"`;
        }
        case "macOwners":
            // Every domain's NICs in one step; "$u" and "$d" are expanded by the host's shell, never spliced.
            return `${virsh.commandLine({ args: DOMAINS_BY_UUID })} | while ${EACH_DOMAIN}; ` +
                `printf '%s%s\\n' '${MAC_OWNER_MARK}' "$d"; ${virsh.commandLine({ args: ["domiflist"] })} --domain="$u" </dev/null; done`;
        case "diskSources": {
            // As macOwners, but any failed read fails the probe: a domain not seen must never count as "not using the file".
            // A domain undefined (or renamed) between the list and its domblklist fails a read, so the whole read is made
            // again, up to DISK_SOURCES_READS times: only a complete one counts (a renamed domain is in the next list).
            const [live, config] = [["domblklist"], ["domblklist", "--inactive"]].map((args) => virsh.commandLine({ args }));
            const read = `names=$(${virsh.commandLine({ args: DOMAINS_BY_UUID })}) || exit $?; printf '%s\\n' "$names" | ` +
                `while ${EACH_DOMAIN}; printf '%s%s\\n' '${MAC_OWNER_MARK}' "$d"; ` +
                `${live} --domain="$u" </dev/null || exit $?; ${config} --domain="$u" </dev/null || exit $?; done`;
            return wholeReadRetried(read);
        }
    }
}

/** Only virsh's own failure (exit 1: "failed to get domain") is read again; a timeout or a kill fails at once. */
function wholeReadRetried(read: string): string {
    return `( n=1; while :; do out=$(${read}) && break; rc=$?; { [ "$rc" -ne 1 ] || [ "$n" -ge ${DISK_SOURCES_READS} ]; } && exit "$rc"; n=$((n+1)); sleep 0.5; done; ` +
        `printf '%s\\n' "$out" )`;
}

/** XML's five entities, as libvirt writes them in an attribute, back to their characters. */
const XML_ENTITIES_SED = ["-e", "s/&apos;/'/g", "-e", "s/&quot;/\"/g", "-e", "s/&lt;/</g", "-e", "s/&gt;/>/g", "-e", "s/&amp;/\\&/g"];

/** stat and qemu-img say this of a missing file (ENOENT); any other failure fails the probe. */
const NO_SUCH_FILE = "No such file or directory";
/** The exit of a file read that failed: not 1, so that wholeReadRetried fails at once. */
const FILE_READ_FAILED = 2;

/** Runs `read` into $out: printed (through `filter`) when it succeeds, `onMissing` for a missing file, else the probe fails with its message. */
function unlessMissing(read: string, onMissing: string, filter = "cat"): string {
    return `if out=$(${read} </dev/null 2>&1); then printf '%s\\n' "$out" | ${filter}; else case $out in *'${NO_SUCH_FILE}'*) ${onMissing} ;; *) printf '%s\\n' "$out" >&2; exit ${FILE_READ_FAILED} ;; esac; fi`;
}

/**
 * The domainFileIdentities probe: as diskSources, each domain under a MAC_OWNER_MARK line, any failed
 * virsh read fails it (read again as a whole, like diskSources). A named file that is missing (gone)
 * prints nothing; a file that cannot be read otherwise (EACCES, I/O error) fails the probe: a file
 * not seen must never count as "nobody uses it". A network disk names no path and is skipped.
 */
function domainFileIdentitiesLine(virsh: Virsh): string {
    const virshLine = (args: string[]) => virsh.commandLine({ args });
    const host = (...args: string[]) => virsh.commandLine({ host: true, args });
    const statEach = `while IFS= read -r f; do case $f in /*) ${unlessMissing(`${host("stat", "-L", "-c", SOURCE_IDENTITY_FORMAT, "--")} "$f"`, ":")} ;; esac; done`;
    // Every <source file|dev=…> (disks, backing stores, a mirror's) and a <mirror file=…>, entities decoded; text filters, never under sudo.
    const xmlLines = (kinds: string) => `printf '%s\\n' "$live" "$config" | ${shellCommand(["grep", "-oE", `<(${kinds}) [^>]*`])}`;
    const decoded = shellCommand(["sed", ...XML_ENTITIES_SED]);
    const named = `${xmlLines("source|mirror")} | ${shellCommand(["sed", "-nE", "s/.* (file|dev)='([^']*)'.*/\\2/p"])} | ${decoded} | sort -u`;
    // A shut-off domain's chains: each path with its disk's <driver type> (a <format> in a backing store), "raw" where none is given.
    const typed = `${xmlLines("disk|driver|format|source|mirror")} | ${shellCommand(["sed", "-nE", "-e", "s/^<(driver|format) .*type='([^']*)'.*/T \\2/p",
        "-e", "s/^<(disk|driver|format) .*/T raw/p", "-e", "s/^<(source|mirror) (.* )?(file|dev)='([^']*)'.*/P \\4/p"])} | ${decoded} | ` +
        `{ t=raw; while IFS= read -r l; do case $l in "T "*) t=\${l#T } ;; "P /"*) printf '%s %s\\n' "$t" "\${l#P }" ;; esac; done; } | sort -u`;
    // qemu-img reads a chain only as the disk's own format, never probed, and never for a raw disk: a guest may plant a
    // qcow2 header (with a json:{nbd,http} backing file) in a raw disk, which root's qemu-img would follow.
    const chains = `while IFS= read -r l; do t=\${l%% *}; src=\${l#* }; printf '%s\\n' "$src"; [ "$t" = raw ] && continue; ` +
        `${unlessMissing(`${host("qemu-img", "info")} -f "$t" -U --backing-chain -- "$src"`, "continue", shellCommand(["sed", "-n", "s/^image: //p"]))}; done`;
    const read = `names=$(${virshLine(DOMAINS_BY_UUID)}) || exit $?; running=$(${virshLine(["list", "--uuid"])}) || exit $?; printf '%s\\n' "$names" | ` +
        `while ${EACH_DOMAIN}; printf '%s%s\\n' '${MAC_OWNER_MARK}' "$d"; ` +
        `live=$(${virshLine(["dumpxml"])} --domain="$u" </dev/null) || exit $?; config=$(${virshLine(["dumpxml", "--inactive"])} --domain="$u" </dev/null) || exit $?; ` +
        `if printf '%s\\n' "$running" | grep -Fqx -- "$u"; then files=$(${named}) || exit $?; ` +
        `else files=$(${typed} | ${chains}) || exit $?; fi; printf '%s\\n' "$files" | ${statEach} || exit $?; done`;
    return wholeReadRetried(read);
}

/** `virsh qemu-agent-command` with the agent's own bound; the JSON is one quoted argument after `--`. */
export function agentCommand(virsh: Virsh, json: string): string[] {
    return ["qemu-agent-command", `--domain=${virsh.domain}`, `--timeout=${AGENT_TIMEOUT_SECONDS}`, "--", json];
}

/** `virsh dumpxml --inactive --security-info`: the definableConfig probe, and the compare before a define. */
export function definableConfigArgs(domain: string): string[] {
    return ["dumpxml", "--inactive", "--security-info", `--domain=${domain}`];
}
