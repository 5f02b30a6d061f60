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

/** The two half-missing rows: `device` names it ("the disk"), `same` says what the re-attach keeps ("same target"). */
export function halfRules(device: string, same: string): ChangeRule[] {
    const how = (flag: string) => `virsh attach-device ${flag} with its own XML (${same}); the half that is there is left as it is`;
    return [
        { path: "attachedConfig", when: `false: ${device} is gone from the persistent config (removed by hand, e.g. with --config)`,
            running: "live", shutOff: "config", how: how("--config") },
        { path: "attachedLive", when: `false while the domain runs: ${device} is gone from the running guest only (a shut-off domain has no live half)`,
            running: "live", shutOff: "none", how: how("--live") },
    ];
}
