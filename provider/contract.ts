/**
 * The one interface `sdk/` and `provider/` share: the plain (resolved) inputs and outputs of each
 * resource. The SDK's Args wrap every field in `pulumi.Input`; the providers receive these values.
 * What a change of each field does (live, reboot, replace) is in the rule tables under `rules/`.
 */
import type { MemorySize } from "./units";

/** One jump host (bastion) on the way to the hypervisor, as an object. */
export interface JumpHost {
    /** Host name, address or an alias of the SSH config. */
    host: string;
    /** Default: the SSH config's Port for the host, else 22. */
    port?: number;
    /** Default: the SSH config's User for the host, else the connection's user. */
    user?: string;
    /** Private key for this hop. Secret. Default: the connection's privateKey or agent (never its password). */
    privateKey?: string;
    /** Passphrase of this hop's encrypted `privateKey`. Secret. */
    privateKeyPassphrase?: string;
    /** ssh-agent socket for this hop. Default: the connection's agent. */
    agent?: string;
    /** Pinned host key fingerprint of this hop, `SHA256:…`. Checked instead of known_hosts. */
    hostKey?: string;
    /** known_hosts file for this hop. Default: the connection's. */
    knownHostsPath?: string;
}

export interface ConnectionInputs {
    /**
     * SSH host of the hypervisor, or an alias of the SSH config (`sshConfig`). Changing the host it
     * resolves to replaces the resource; another alias for the same host does not.
     */
    host: string;
    /** SSH port. Default: the SSH config's Port, else 22. */
    port?: number;
    /** SSH user. Default: the SSH config's User, else the local user name. */
    user?: string;
    /**
     * ssh-agent socket path. Default: `SSH_AUTH_SOCK` of the provider process when neither
     * `privateKey` nor `password` is given (also tried beside the SSH config's IdentityFile).
     */
    agent?: string;
    /**
     * OpenSSH client config to resolve `host` with. Default `~/.ssh/config` (read when it exists);
     * `false` reads none. Fields given here win over the file.
     */
    sshConfig?: string | false;
    /**
     * Jump hosts before the hypervisor, in order: `"user@bastion:22,user@inner"` as OpenSSH's
     * ProxyJump writes it, or objects. Default: the SSH config's ProxyJump for the host.
     */
    proxyJump?: string | JumpHost[];
    /** OpenSSH or PEM private key text. Mark it secret (`pulumi.secret`). */
    privateKey?: string;
    /** Passphrase of an encrypted `privateKey`. Secret. */
    privateKeyPassphrase?: string;
    /** Password authentication, when no key is given or the key is refused. Secret. */
    password?: string;
    /** Pinned host key fingerprint as `ssh-keygen -lf` prints it: `SHA256:…`. Checked instead of known_hosts. */
    hostKey?: string;
    /** known_hosts file used when `hostKey` is absent. Default `~/.ssh/known_hosts`. */
    knownHostsPath?: string;
    /** Accept any host key. Default false; only for throwaway labs: it lets a man in the middle in. */
    insecureIgnoreHostKey?: boolean;
    /** libvirt URI given to `virsh -c`. Default `qemu:///system`. Changing it replaces the resource. */
    uri?: string;
    /** Run `sudo -n virsh …` (the user needs passwordless sudo for virsh). Default false. */
    sudo?: boolean;
    /** Seconds to wait for the SSH handshake. Default 15. */
    connectTimeout?: number;
    /**
     * Seconds each virsh call on the host may take before it is abandoned (the error then names the
     * domain's current libvirt job). Default 120: above libvirt's own 30 s wait for a held job.
     */
    operationTimeout?: number;
}

/** libvirt's state words as `virsh domstate` prints them. */
export type DomainState = "running" | "shut off" | "paused" | "in shutdown" | "crashed" | "pmsuspended" | "idle" | "dying";

export type RebootPolicy = "never" | "ifRequired" | "configOnly";

interface DomainScoped {
    connection: ConnectionInputs;
    /** libvirt domain name. Changing it replaces the resource. */
    domain: string;
}

/**
 * CPU tuning, named after libvirt's `<cputune>`: scheduler values (`virsh schedinfo`) and pins.
 * Each value set is managed (live on a running domain, in its config too); one left out is not.
 */
export interface CpuTune {
    /** Relative CPU weight against other guests (cpu_shares), 2–262144. */
    shares?: number;
    /** Enforcement period of each vCPU's quota, µs (vcpu_period), 1000–1000000. */
    period?: number;
    /** CPU time each vCPU may use per period, µs (vcpu_quota), 1000–17592186044415; -1: no cap. */
    quota?: number;
    /** The same for QEMU's emulator threads (emulator_period, emulator_quota). */
    emulatorPeriod?: number;
    emulatorQuota?: number;
    /** Host CPUs per vCPU, as libvirt writes them: `{ "0": "2-3", "1": "4,6" }`. A vCPU left out is not managed. */
    vcpuPins?: { [vcpu: string]: string };
    /** Host CPUs of QEMU's emulator threads ("0-1"). */
    emulatorPin?: string;
}

/**
 * Memory limits of QEMU's cgroup, named after libvirt's `<memtune>`: sizes like `memory`, or
 * "unlimited". A hard limit below what the guest can use gets QEMU killed, so it is refused.
 */
export interface MemoryTune {
    hardLimit?: MemorySize;
    softLimit?: MemorySize;
    swapHardLimit?: MemorySize;
}

/** The tuning libvirt holds, in the inputs' own form (memory limits as "…MiB"; an absent one is unlimited). */
export interface DomainTuning {
    cpuTune: CpuTune;
    memoryTune: MemoryTune;
    blkioWeight?: number;
}

export interface DomainResourcesInputs extends DomainScoped {
    /** Current memory (balloon target): "512MiB", "4GiB", or a number of MiB. Unmanaged when absent. */
    memory?: MemorySize;
    /** Maximum memory. Raising or lowering it needs a reboot while the domain runs. */
    maxMemory?: MemorySize;
    /** Current vCPUs. Up to the maximum: live; down: live with the guest agent, else a reboot (the rule table). */
    vcpus?: number;
    /** Maximum vCPUs. Needs a reboot while the domain runs. */
    maxVcpus?: number;
    /**
     * Size of the domain's virtio-mem device: with one, `memory` can go live up to the boot maximum
     * plus this size. Adding the device to a running domain without one needs one reboot (rebootPolicy decides).
     */
    hotplugMemory?: MemorySize;
    /** What to do when a change needs a reboot. Default "never": fail before changing anything. */
    rebootPolicy?: RebootPolicy;
    /** Seconds to wait for a graceful shutdown under "ifRequired". Default 120. */
    shutdownTimeout?: number;
    /** Under "ifRequired", `virsh destroy` the guest if it did not shut down in time. Default false. */
    forceOff?: boolean;
    /** Seconds to wait for the guest's balloon to reach the memory target. Default 20. */
    balloonTimeout?: number;
    /** CPU shares, caps and pins. Live on a running domain (`schedinfo`, `vcpupin`, `emulatorpin --live --config`). */
    cpuTune?: CpuTune;
    /** Memory limits of QEMU's cgroup. Live on a running domain (`memtune --live --config`). */
    memoryTune?: MemoryTune;
    /** I/O weight against other guests (`<blkiotune><weight>`), 100–1000. Live (`blkiotune --live --config`). */
    blkioWeight?: number;
}

export interface DomainResourcesOutputs extends DomainResourcesInputs {
    /** Current memory in KiB as libvirt reports it (the balloon target, plus what a virtio-mem device is asked to plug). */
    currentMemoryKiB: number;
    /** Maximum memory in KiB (with a virtio-mem device: the boot maximum plus its size, the live ceiling). */
    maxMemoryKiB: number;
    /** What the guest really holds, in KiB (`dommemstat` actual); lags the target without a balloon driver. */
    balloonActualKiB: number | null;
    /** True when the guest's balloon reached the target within `balloonTimeout`. */
    balloonSettled: boolean;
    /** The memory the domain booted with at most (without a virtio-mem device: maxMemoryKiB). */
    bootMaxMemoryKiB: number;
    /** The virtio-mem device's size, what it is asked to plug and what the guest has plugged (KiB); null without one. */
    hotplugSizeKiB: number | null;
    hotplugRequestedKiB: number | null;
    hotplugCurrentKiB: number | null;
    /** True when the guest plugged what the device was asked for within `balloonTimeout` (or there is no device). */
    hotplugSettled: boolean;
    /** vCPUs libvirt has plugged into the running guest (the config's count while shut off). */
    currentVcpus: number;
    maximumVcpus: number;
    /** True when the guest agent answered at this read: vCPUs then go down live, and hot-added ones are onlined. */
    guestAgent: boolean;
    /** vCPUs online in the guest, as its agent reports them; null when no agent answered (unknown). */
    guestVcpus: number | null;
    /** The guest's total memory in KiB as it reports it (balloon statistics, `dommemstat` available; lags up to one stats period); null without them. */
    guestMemoryKiB: number | null;
    state: DomainState;
    /** True under "configOnly" when the persistent config differs from the running guest. */
    pendingReboot: boolean;
    /** Readable descriptions of the changes waiting for a reboot. */
    pendingChanges: string[];
    /** The tuning of the running domain (its live XML); null while it is shut off. */
    liveTuning: DomainTuning | null;
    /** The tuning in the persistent config. */
    configTuning: DomainTuning;
}

export type DiskBus = "virtio" | "scsi" | "sata" | "ide";
export type DiskFormat = "raw" | "qcow2";
export type DiskCache = "none" | "writethrough" | "writeback" | "directsync" | "unsafe" | "default";

/**
 * A disk's I/O limits (libvirt's `<iotune>`), whole numbers ≥ 0; 0 or absent means no limit. A
 * total and the read/write limit of the same kind (bytes or IOPS) exclude each other.
 */
export interface DiskIoTune {
    totalBytesSec?: number;
    readBytesSec?: number;
    writeBytesSec?: number;
    totalIopsSec?: number;
    readIopsSec?: number;
    writeIopsSec?: number;
}

export interface AttachedDiskInputs extends DomainScoped {
    /** Path on the host of the image file or block device. */
    source: string;
    /** "file" or "block"; detected on the host when absent. */
    sourceType?: "file" | "block";
    /** Guest device name (vdb, sdc…). The next free name on the bus when absent. */
    target?: string;
    /** Default "virtio". sata and ide cannot be hot-plugged into a running domain. */
    bus?: DiskBus;
    /** Image format. Default "raw". */
    format?: DiskFormat;
    /** Host page cache mode; libvirt's default when absent. */
    cache?: DiskCache;
    /** "native" (needs cache "none" or "directsync") or "threads". */
    io?: "native" | "threads";
    /** Attach read-only. Default false. */
    readonly?: boolean;
    /** Serial number the guest sees. */
    serial?: string;
    /**
     * Capacity the disk must have ("64MiB", "20GiB"; a number means MiB; "…B" bytes, a whole number
     * of 512-byte sectors). A missing file is created (`qemu-img create -f <format>`, in an existing
     * directory). Growing is live (`blockresize`; shut off: `qemu-img resize`); a shrink is refused.
     * A block device must already be that big (grow it first, e.g. `lvextend`).
     */
    size?: MemorySize;
    /**
     * On a real destroy, remove the image after the detach, if this resource created it, the path
     * still holds that very file, and no domain on the host uses it (else it is kept, with a
     * warning). A replacement (a re-plug) always keeps it. Default false: the image is kept.
     */
    deleteImage?: boolean;
    /** I/O limits. Any change is live (`blkdeviotune --live --config`); removing it clears the limits live. */
    iotune?: DiskIoTune;
    /** Seconds to wait for the guest to release the disk on detach. Default 30. */
    detachTimeout?: number;
    /**
     * A new `source` that names an existing file or block device: false (default) swaps the disk
     * to it (a replacement); true moves the disk onto it (blockcopy over its contents), which must
     * then have exactly the disk's size.
     */
    moveOntoExisting?: boolean;
    /**
     * What a move does with the old image once the guest runs on the new one: "keep" (default), or
     * "delete" (only an image this resource created, still that file, and no domain using it).
     */
    afterMove?: "keep" | "delete";
    /** Seconds a move's copy may take before it is aborted (the guest stays on the old source). Default 3600. */
    moveTimeout?: number;
    /** A move's copy rate limit in MiB/s (`blockcopy --bandwidth`); unlimited when absent. */
    copyBandwidth?: number;
}

/**
 * Where an attached device is, as the last operation or refresh read it. A device the running
 * domain lacks (attachedLive false while domainRunning) or the config lacks (attachedConfig false),
 * removed by hand, shows as a change, and `pulumi up` attaches the missing half.
 */
export interface AttachedHalves {
    /** Present in the running domain's XML. */
    attachedLive: boolean;
    /** Present in the persistent config. */
    attachedConfig: boolean;
    /** The domain ran at that read: only then is attachedLive false a missing half. */
    domainRunning: boolean;
}

export interface AttachedDiskOutputs extends AttachedDiskInputs, AttachedHalves {
    target: string;
    sourceType: "file" | "block";
    bus: DiskBus;
    format: DiskFormat;
    /**
     * This resource created the image (source was missing and size was given), or took it over
     * from the disk it replaced (a re-plug keeps the image).
     */
    imageCreated: boolean;
    /**
     * Which file it created: `st_dev:st_ino birth-time` (`stat -c '%d:%i %w'` on the host, read in
     * the create's own exec). deleteImage removes the file only while the path still holds it.
     */
    imageIdentity?: string;
    /**
     * A token of this resource's own create. When a later create (a forced replacement, a rename
     * without an alias) takes the attached disk over, the delete of an instance with another token
     * leaves the disk and its image to it.
     */
    instance?: string;
    /** The capacity QEMU reports (`virsh domblkinfo`), in bytes, read with every operation and refresh while `size` is set; null without `size`. */
    capacityBytes: number | null;
}

export type InterfaceType = "bridge" | "network";

export interface AttachedInterfaceInputs extends DomainScoped {
    /** "bridge" (a host Linux bridge) or "network" (a libvirt network). */
    type: InterfaceType;
    /** Bridge or network name. */
    source: string;
    /** NIC model. Default "virtio". */
    model?: string;
    /** MAC address; when absent one is chosen as libvirt would (52:54:00 and three random octets) and reported. */
    mac?: string;
    /** Link state. Default "up". */
    linkState?: "up" | "down";
    /** Seconds to wait for the guest to release the NIC on detach. Default 30. */
    detachTimeout?: number;
}

export interface AttachedInterfaceOutputs extends AttachedInterfaceInputs, AttachedHalves {
    mac: string;
    model: string;
    linkState: "up" | "down";
}

export interface AttachedCdromInputs extends DomainScoped {
    /** ISO path on the host; absent for an empty tray. */
    source?: string;
    /** Drive name. An existing CD-ROM drive (e.g. IDE "hdc") has only its media managed; otherwise a drive is hot-plugged. */
    target?: string;
    /** Bus of a hot-plugged drive. Default "scsi" (a virtio target cannot hold ejectable media). */
    bus?: DiskBus;
    /** Seconds to wait for the guest to release a hot-plugged drive on detach. Default 30. */
    detachTimeout?: number;
}

/** The halves are those of the drive; only a drive this resource hot-plugged (ownsDrive) is re-attached where it is missing. */
export interface AttachedCdromOutputs extends AttachedCdromInputs, AttachedHalves {
    target: string;
    bus: DiskBus;
    /** True when this resource hot-plugged the drive (and detaches it on delete); false when it manages only the media. */
    ownsDrive: boolean;
    /** How the last media change was made: "inserted", "swapped", "ejected", "reattached" or "attached". */
    lastMediaChange: string;
}
