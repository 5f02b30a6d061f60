/** AttachedDisk: every device field is fixed once attached; a change detaches and attaches anew. */
import { PLACEMENT_PROPERTIES, PLACEMENT_RULES } from "./connection-rules";
import { REPLACE_DEVICE, storedOnly } from "./device-rules";
import type { RuleTable } from "./rule-table";

const DEVICE_FIELDS = ["source", "sourceType", "target", "bus", "format", "cache", "io", "readonly", "serial"];

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
        { path: "detachTimeout" },
    ],
    rules: [
        ...PLACEMENT_RULES,
        ...DEVICE_FIELDS.map((path) => ({ path, when: "any change", ...REPLACE_DEVICE })),
        storedOnly("detachTimeout"),
    ],
};
