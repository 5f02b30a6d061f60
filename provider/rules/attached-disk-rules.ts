/**
 * AttachedDisk: the device fields are fixed once attached (a change detaches and attaches anew);
 * I/O limits change live; a new source where nothing is yet (or moveOntoExisting) is a move.
 */
import { PLACEMENT_PROPERTIES, PLACEMENT_RULES } from "./connection-rules";
import { HALF_PROPERTIES, halfRules, REPLACE_DEVICE, storedOnly } from "./device-rules";
import { normalizeIoTune } from "../disk-iotune";
import { parseDiskSizeBytes } from "../units";
import type { RuleTable, Values } from "./rule-table";

const DEVICE_FIELDS = ["source", "sourceType", "target", "bus", "format", "cache", "io", "readonly", "serial"];

/** A disk's re-plug: the guest sees the device go and come back, but the image file is the same one throughout. */
const REPLUG_DISK = { ...REPLACE_DEVICE, how: `${REPLACE_DEVICE.how}; the guest sees the disk go and come back. The image file is kept (never removed or recreated, deleteImage or not)` };

/**
 * The fact the diff reads from the host for a new source (disk-move.ts): whether something is at
 * that path. Never an input; absent (not read) keeps the old meaning, a replacement.
 */
export const DESTINATION_EXISTS = "moveDestinationExists";

/** A new source that the disk moves to (blockcopy), rather than a swap to another disk. */
export function isMove(olds: Values, news: Values): boolean {
    if (news.source === olds.source) return false;
    return news[DESTINATION_EXISTS] === false || (news[DESTINATION_EXISTS] === true && news.moveOntoExisting === true);
}

const MOVE = "part of the move (blockcopy converts to the new format and source type)";

export const ATTACHED_DISK_RULES: RuleTable = {
    resource: "AttachedDisk",
    properties: [
        ...PLACEMENT_PROPERTIES,
        { path: "source" },
        { path: "sourceType", absentKeepsOld: true },
        { path: "target", absentKeepsOld: true },
        { path: "bus", normalize: (v) => v ?? "virtio" },
        { path: "format", normalize: (v) => v ?? "raw" },
        { path: "cache" },
        { path: "io" },
        { path: "readonly", normalize: (v) => v === true },
        { path: "serial" },
        { path: "size", normalize: (v) => (v === undefined ? undefined : parseDiskSizeBytes(v as string | number, "size")) },
        { path: "deleteImage", normalize: (v) => v === true },
        // All limits 0, {} and absent are the same: no limit.
        { path: "iotune", normalize: normalizeIoTune },
        { path: "detachTimeout" },
        { path: "moveOntoExisting", normalize: (v) => v === true },
        { path: "afterMove", normalize: (v) => v ?? "keep" },
        { path: "moveTimeout" },
        { path: "copyBandwidth" },
        ...HALF_PROPERTIES,
    ],
    rules: [
        ...PLACEMENT_RULES,
        { path: "source", when: "a new path where nothing is yet, or an existing one with moveOntoExisting: a move", applies: isMove, running: "live", shutOff: "config",
            how: "virsh blockcopy --transient-job --pivot --wait (same target, the guest keeps running, its data copied; shut off: qemu-img convert, then the config names the new source); " +
                "checked first: the directory exists, has room for the image's allocation, no domain uses the new path, an existing one has exactly the disk's size. " +
                "A failure or moveTimeout leaves the guest on the old source and removes a partial copy; the old image: afterMove" },
        { path: "source", when: "another existing file or device (without moveOntoExisting)", ...REPLACE_DEVICE,
            how: `${REPLACE_DEVICE.how} with the new source; the old image file is kept (deleteImage or not)` },
        { path: "sourceType", when: "with a source that moves", applies: isMove, running: "live", shutOff: "config", how: MOVE },
        ...DEVICE_FIELDS.filter((path) => path !== "source" && path !== "format").map((path) => ({ path, when: "any change", ...REPLUG_DISK })),
        { path: "format", when: "with a source that moves", applies: isMove, running: "live", shutOff: "config", how: MOVE },
        { path: "format", when: "any change", ...REPLACE_DEVICE,
            how: "refused by the diff (the preview fails) while the source is the file the state names, by its path or another (a symbolic link, another name of the device), " +
                "against the format the state names (QEMU would read the same bytes in another format); with a new file, as a change of source" },
        { path: "size", when: "removed from the inputs (no longer managed)", applies: (_o, n) => n.size === undefined, running: "none", shutOff: "none",
            how: "nothing; the disk keeps its size" },
        { path: "size", when: "up (a shrink is refused by check: it loses data)", running: "live", shutOff: "config",
            how: "virsh blockresize, the guest sees it at once (shut off: qemu-img resize); a block device must already be that big" },
        { path: "deleteImage", when: "any change", running: "none", shutOff: "none", how: "stored; used by a real destroy: removes the image only if this resource created it, the path still holds that file (device, inode, birth time) and no domain uses it; a replacement keeps it" },
        { path: "iotune", when: "set, changed or removed", running: "live", shutOff: "config",
            how: "virsh blkdeviotune --live --config (every limit given; removal sets them to 0)" },
        storedOnly("detachTimeout"),
        ...["moveOntoExisting", "afterMove", "moveTimeout", "copyBandwidth"].map((path) => ({ path, when: "any change", running: "none" as const, shutOff: "none" as const,
            how: "stored; used by the next move" })),
        ...halfRules("the disk", "same target"),
    ],
};
