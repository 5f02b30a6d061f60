/** Rows shared by the three device resources. */
import type { ChangeRule } from "./rule-table";

export const REPLACE_DEVICE = { running: "replace", shutOff: "replace", how: "detach, wait until the guest releases it, attach anew" } as const;

export function storedOnly(path: string): ChangeRule {
    return { path, when: "any change", running: "none", shutOff: "none", how: "stored; used by the next detach" };
}
