/** AttachedInterface: the source and link state change live; identity (type, model, MAC) replaces. */
import { PLACEMENT_PROPERTIES, PLACEMENT_RULES } from "./connection-rules";
import { HALF_PROPERTIES, halfRules, REPLACE_DEVICE, storedOnly } from "./device-rules";
import type { RuleTable } from "./rule-table";

export const ATTACHED_INTERFACE_RULES: RuleTable = {
    resource: "AttachedInterface",
    properties: [
        ...PLACEMENT_PROPERTIES,
        { path: "type" },
        { path: "source" },
        { path: "model", normalize: (v) => v ?? "virtio" },
        { path: "mac", absentKeepsOld: true, normalize: (v) => String(v).toLowerCase() },
        { path: "linkState", normalize: (v) => v ?? "up" },
        { path: "detachTimeout" },
        ...HALF_PROPERTIES,
    ],
    rules: [
        ...PLACEMENT_RULES,
        { path: "type", when: "bridge ↔ network", ...REPLACE_DEVICE },
        { path: "source", when: "another bridge or network", running: "live", shutOff: "config",
            how: "virsh update-device --live --config (same MAC); re-attached if libvirt refuses" },
        { path: "model", when: "any change", ...REPLACE_DEVICE },
        { path: "mac", when: "any change", ...REPLACE_DEVICE },
        { path: "linkState", when: "up ↔ down", running: "live", shutOff: "config",
            how: "virsh domif-setlink --live and --config" },
        storedOnly("detachTimeout"),
        ...halfRules("the NIC", "same MAC"),
    ],
};
