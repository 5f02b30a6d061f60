/** Rows shared by the three device resources. */
import type { ChangeRule, PropertySpec, Values } from "./rule-table";

export const REPLACE_DEVICE = { running: "replace", shutOff: "replace", how: "detach, wait until the guest releases it, attach anew" } as const;

export function storedOnly(path: string): ChangeRule {
    return { path, when: "any change", running: "none", shutOff: "none", how: "stored; used by the next detach" };
}

/**
 * The half of an attached device the last read found missing (outputs: AttachedHalves). The
 * inputs never carry these fields, so they compare as "present": a missing half is a change.
 * A CD-ROM drive the domain had before (ownsDrive false) is not this resource's to plug.
 */
export function missingHalvesOf(values: Values): { live: boolean; config: boolean } {
    const ours = values.ownsDrive !== false;
    return {
        live: ours && values.domainRunning === true && values.attachedLive === false,
        config: ours && values.attachedConfig === false,
    };
}

export const HALF_PROPERTIES: readonly PropertySpec[] = [
    { path: "attachedConfig", normalizeIn: (values) => !missingHalvesOf(values).config },
    { path: "attachedLive", normalizeIn: (values) => !missingHalvesOf(values).live },
];

const SAME_XML = "with the device's own XML (same target, same MAC); the half that is there is left as it is";

export const HALF_RULES: readonly ChangeRule[] = [
    { path: "attachedConfig", when: "false: the device is gone from the persistent config (removed by hand, e.g. virsh detach-disk --config)",
        running: "live", shutOff: "config", how: `virsh attach-device --config ${SAME_XML}` },
    { path: "attachedLive", when: "false while the domain runs: the device is gone from the running guest only (a shut-off domain has no live half)",
        running: "live", shutOff: "none", how: `virsh attach-device --live ${SAME_XML}` },
];
