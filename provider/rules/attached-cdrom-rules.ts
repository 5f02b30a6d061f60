/** AttachedCdrom: media changes live; the drive itself (target, bus) replaces. */
import { PLACEMENT_PROPERTIES, PLACEMENT_RULES } from "./connection-rules";
import { HALF_PROPERTIES, halfRules, REPLACE_DEVICE, storedOnly } from "./device-rules";
import type { RuleTable } from "./rule-table";

export const ATTACHED_CDROM_RULES: RuleTable = {
    resource: "AttachedCdrom",
    properties: [
        ...PLACEMENT_PROPERTIES,
        { path: "source", normalize: (v) => v ?? null },
        { path: "target", absentKeepsOld: true },
        { path: "bus", absentKeepsOld: true },
        { path: "detachTimeout" },
        ...HALF_PROPERTIES,
    ],
    rules: [
        ...PLACEMENT_RULES,
        { path: "source", when: "insert, swap or eject the ISO", running: "live", shutOff: "config",
            how: "virsh change-media --live --config; a hot-plugged drive that refuses is re-attached" },
        { path: "target", when: "any change", ...REPLACE_DEVICE },
        { path: "bus", when: "any change", ...REPLACE_DEVICE },
        storedOnly("detachTimeout"),
        ...halfRules("a drive this resource hot-plugged", "same target and media"),
    ],
};
