/**
 * For every row of the rule tables (provider/rules), a change that hits it on the rig: inputs
 * before and after, merged over the resource's base inputs (an `undefined` value removes the key).
 * test/rig/rule-matrix.test.ts turns each row into a test on a running and on a shut-off domain;
 * a row without an example here gets a test that fails, so a new row is tested by being written.
 */
import type { ConnectionInputs } from "../../provider/contract";

export type Resource = "DomainResources" | "AttachedDisk" | "AttachedInterface" | "AttachedCdrom";

/** What an example may ask of the rig, made fresh for each test. */
export interface ExampleContext {
    connection: ConnectionInputs;
    /** The second domain, in the same state as the first (running or shut off). */
    otherDomain: string;
    /** A path under the rig's images that does not exist yet (size creates it). */
    newImage(label: string): string;
    /** A file that exists, in that format, of the base disk's size (16 MiB): a swap, or with moveOntoExisting a move, onto it. */
    existingImage(label: string, format: "raw" | "qcow2"): string;
    /** A loop block device of 16 MiB (the base disk's size). */
    loopDevice(): string;
    /** A second Linux bridge and a libvirt network (forward mode bridge) on the rig's bridge. */
    otherBridge: string;
    network: string;
    /** CD-ROM media. */
    iso(label: string): string;
    /** Another SSH port to the same host (our own sshd), and another name for the same host. */
    otherPort: number;
    otherHostName: string;
    /** A MAC no other domain holds: the running and the shut-off case run at once, and a MAC is unique per host. */
    mac(n: number): string;
}

export interface Change {
    from: Record<string, unknown>;
    to: Record<string, unknown>;
}

export interface RowExample {
    change: (ctx: ExampleContext) => Change;
    /** The domain it needs: a plain guest (default), one with a virtio-mem device, or one whose guest agent answers. */
    guest?: "virtioMem" | "agent";
    /** Drift made by hand after the create (instead of an input change): that half of the device removed, then a refresh. */
    drift?: "live" | "config";
    /**
     * Why the drift cannot happen on a shut-off domain (it has only the config half): the matrix
     * checks what happens instead (the config half removed, the device is gone and refresh drops it;
     * no live half to remove, the preview shows nothing).
     */
    notOnShutOff?: string;
}

type Examples = Record<string, RowExample>;

const plain = (change: (ctx: ExampleContext) => Change): RowExample => ({ change });

/** Rows every table shares: key `path|when`, the row's own words. */
function placement(): Examples {
    const anotherHost = "another host (an SSH config alias counts as the HostName and Port it resolves to) or libvirt URI";
    return {
        "domain|another domain": plain((c) => ({ from: {}, to: { domain: c.otherDomain } })),
        [`connection.host|${anotherHost}`]: plain((c) => ({ from: {}, to: { connection: { ...c.connection, host: c.otherHostName } } })),
        [`connection.port|${anotherHost}`]: plain((c) => ({ from: {}, to: { connection: { ...c.connection, port: c.otherPort } } })),
        [`connection.uri|${anotherHost}`]: plain((c) => ({ from: {}, to: { connection: { ...c.connection, uri: "qemu+unix:///system" } } })),
        "connection|user, credentials, agent, sshConfig, proxyJump, host-key settings, sudo, timeouts; another alias for the same host":
            plain((c) => ({ from: {}, to: { connection: { ...c.connection, connectTimeout: 20 } } })),
    };
}

/** A device's half removed by hand (the rows of device-rules.ts halfRules). */
function halves(device: string): Examples {
    return {
        [`attachedConfig|false: ${device} is gone from the persistent config (removed by hand, e.g. with --config)`]:
            { change: () => ({ from: {}, to: {} }), drift: "config", notOnShutOff: "a shut-off domain has only its config: without it the device is gone" },
        [`attachedLive|false while the domain runs: ${device} is gone from the running guest only (a shut-off domain has no live half)`]:
            { change: () => ({ from: {}, to: {} }), drift: "live", notOnShutOff: "a shut-off domain has no live half" },
    };
}

/** The two rows of each tuning value in `group`: set (from unset), and removed after it was set; `beside` is in `group` before and after. */
function tuning(group: "cpuTune" | "memoryTune", values: Record<string, unknown>, beside: Record<string, unknown> = {}): Examples {
    const unset = Object.keys(beside).length > 0 ? { [group]: beside } : { [group]: undefined };
    return Object.fromEntries(Object.entries(values).flatMap(([field, value]): Array<[string, RowExample]> => [
        [`${group}.${field}|removed from the inputs (no longer managed)`, plain(() => ({ from: { [group]: { ...beside, [field]: value } }, to: unset }))],
        [`${group}.${field}|set or changed`, plain(() => ({ from: unset, to: { [group]: { ...beside, [field]: value } } }))],
    ]));
}

const stored = (path: string, from: unknown, to: unknown): Examples => ({ [`${path}|any change`]: plain(() => ({ from: { [path]: from }, to: { [path]: to } })) });

export const ROW_EXAMPLES: Record<Resource, Examples> = {
    DomainResources: {
        ...placement(),
        "memory|removed from the inputs (no longer managed)": plain(() => ({ from: {}, to: { memory: undefined } })),
        "maxMemory|removed from the inputs (no longer managed)": plain(() => ({ from: { maxMemory: "512MiB" }, to: { maxMemory: undefined } })),
        "vcpus|removed from the inputs (no longer managed)": plain(() => ({ from: {}, to: { vcpus: undefined } })),
        "maxVcpus|removed from the inputs (no longer managed)": plain(() => ({ from: { maxVcpus: 4 }, to: { maxVcpus: undefined } })),
        "hotplugMemory|removed from the inputs (no longer managed)": { change: () => ({ from: { hotplugMemory: "1GiB" }, to: { hotplugMemory: undefined } }), guest: "virtioMem" },
        "memory|up or down within the current maximum": plain(() => ({ from: {}, to: { memory: "384MiB" } })),
        "memory|above the current maximum": plain(() => ({ from: {}, to: { memory: "640MiB" } })),
        "maxMemory|any change": plain(() => ({ from: {}, to: { maxMemory: "768MiB" } })),
        "vcpus|up, within the current maximum": plain(() => ({ from: {}, to: { vcpus: 2 } })),
        "vcpus|down, while the guest agent answered (at the last read or refresh)": { change: () => ({ from: { vcpus: 2 }, to: { vcpus: 1 } }), guest: "agent" },
        "vcpus|down without the guest agent, or above the current maximum": plain(() => ({ from: { vcpus: 2 }, to: { vcpus: 1 } })),
        "maxVcpus|any change": plain(() => ({ from: {}, to: { maxVcpus: 3 } })),
        "hotplugMemory|the domain's virtio-mem device already has this size": { change: () => ({ from: {}, to: { hotplugMemory: "1GiB" } }), guest: "virtioMem" },
        "hotplugMemory|added to a domain without a virtio-mem device": plain(() => ({ from: {}, to: { hotplugMemory: "256MiB" } })),
        "rebootPolicy|any change": plain(() => ({ from: {}, to: { rebootPolicy: "configOnly" } })),
        "shutdownTimeout|any change": plain(() => ({ from: {}, to: { shutdownTimeout: 90 } })),
        "forceOff|any change": plain(() => ({ from: {}, to: { forceOff: true } })),
        "balloonTimeout|any change": plain(() => ({ from: {}, to: { balloonTimeout: 10 } })),
        ...tuning("cpuTune", { shares: 512, period: 50000, quota: 50000, emulatorPeriod: 50000, emulatorQuota: 20000, emulatorPin: "1" }),
        "cpuTune.vcpuPins|vCPUs dropped from the map, or the map removed (no longer managed)": plain(() => ({ from: { cpuTune: { vcpuPins: { 0: "1" } } }, to: { cpuTune: undefined } })),
        "cpuTune.vcpuPins|a vCPU's pin set or changed": plain(() => ({ from: {}, to: { cpuTune: { vcpuPins: { 0: "1" } } } })),
        // Above the copies' ceiling (512 MiB) plus QEMU's overhead under TCG (2 GiB).
        ...tuning("memoryTune", { hardLimit: "3GiB", softLimit: "1GiB" }),
        // A swap-hard limit needs a hard limit at most as high (an unset one is unlimited).
        ...tuning("memoryTune", { swapHardLimit: "4GiB" }, { hardLimit: "3GiB" }),
        "blkioWeight|removed from the inputs (no longer managed)": plain(() => ({ from: { blkioWeight: 500 }, to: { blkioWeight: undefined } })),
        "blkioWeight|set or changed": plain(() => ({ from: {}, to: { blkioWeight: 500 } })),
    },
    AttachedDisk: {
        ...placement(),
        "source|a new path where nothing is yet, or an existing one with moveOntoExisting: a move": plain((c) => ({ from: {}, to: { source: c.newImage("moved") } })),
        "source|another existing file or device (without moveOntoExisting)": plain((c) => ({ from: {}, to: { source: c.existingImage("swapped", "raw") } })),
        "sourceType|with a source that moves": plain((c) => ({ from: {}, to: { source: c.loopDevice(), sourceType: "block", moveOntoExisting: true } })),
        "sourceType|any change": plain((c) => ({ from: { sourceType: "file" }, to: { source: c.loopDevice(), sourceType: "block" } })),
        "target|any change": plain(() => ({ from: { target: "vdb" }, to: { target: "vdc" } })),
        "bus|any change": plain(() => ({ from: {}, to: { bus: "scsi" } })),
        // The old image is the disk's own (size created it): afterMove delete removes it once the guest runs on the copy.
        "format|with a source that moves": plain((c) => ({ from: {}, to: { source: c.newImage("qcow2"), format: "qcow2", afterMove: "delete" } })),
        "format|any change": plain((c) => ({ from: {}, to: { source: c.existingImage("qcow2", "qcow2"), format: "qcow2" } })),
        "cache|any change": plain(() => ({ from: { cache: "none" }, to: { cache: "writeback" } })),
        "io|any change": plain(() => ({ from: { cache: "none" }, to: { io: "native" } })),
        "readonly|any change": plain(() => ({ from: {}, to: { readonly: true } })),
        "serial|any change": plain(() => ({ from: {}, to: { serial: "MX-1" } })),
        "size|removed from the inputs (no longer managed)": plain(() => ({ from: {}, to: { size: undefined } })),
        "size|up (a shrink is refused by check: it loses data)": plain(() => ({ from: {}, to: { size: "32MiB" } })),
        ...stored("deleteImage", true, false),
        ...halves("the disk"),
        "iotune|set, changed or removed": plain(() => ({ from: {}, to: { iotune: { totalIopsSec: 500 } } })),
        ...stored("detachTimeout", 30, 20),
        ...stored("moveOntoExisting", false, true),
        ...stored("afterMove", "keep", "delete"),
        ...stored("moveTimeout", 3600, 600),
        ...stored("copyBandwidth", 10, 20),
    },
    AttachedInterface: {
        ...placement(),
        "type|bridge ↔ network": plain((c) => ({ from: {}, to: { type: "network", source: c.network } })),
        "source|another bridge or network": plain((c) => ({ from: {}, to: { source: c.otherBridge } })),
        "model|any change": plain(() => ({ from: {}, to: { model: "e1000" } })),
        "mac|any change": plain((c) => ({ from: { mac: c.mac(1) }, to: { mac: c.mac(2) } })),
        "linkState|up ↔ down": plain(() => ({ from: {}, to: { linkState: "down" } })),
        ...halves("the NIC"),
        ...stored("detachTimeout", 30, 20),
    },
    AttachedCdrom: {
        ...placement(),
        "source|insert, swap or eject the ISO": plain((c) => ({ from: {}, to: { source: c.iso("swapped") } })),
        "target|any change": plain(() => ({ from: { target: "sdb", bus: "scsi" }, to: { target: "sdc", bus: "scsi" } })),
        "bus|any change": plain(() => ({ from: {}, to: { target: undefined, bus: "scsi" } })),
        // Only a drive the resource hot-plugged has halves of its own.
        ...Object.fromEntries(Object.entries(halves("a drive this resource hot-plugged"))
            .map(([key, example]): [string, RowExample] => [key, { ...example, change: () => ({ from: { target: "sdb", bus: "scsi" }, to: {} }) }])),
        ...stored("detachTimeout", 30, 20),
    },
};
