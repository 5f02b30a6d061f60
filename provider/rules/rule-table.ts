/**
 * What a change of each property does, as data. The diff reads these tables to classify a change;
 * the README's tables are rendered from them (and a test checks that they agree).
 */

/** live: applied to the running guest and its config; config: to the config only (domain off, no reboot
 * needed); reboot: needs a reboot to take effect; replace: the device is detached and attached again
 * (or, for a domain/host change, managed anew); none: only stored, nothing on the host changes. */
export type ChangeKind = "live" | "config" | "reboot" | "replace" | "none";

export type Values = Readonly<Record<string, unknown>>;

export interface PropertySpec {
    /** Dotted path in the inputs: "memory", "connection.host". */
    path: string;
    /** Maps a value to the form compared (units parsed, defaults filled). */
    normalize?: (value: unknown) => unknown;
    /**
     * The compared form computed from all the inputs, for a value whose meaning depends on its
     * siblings (a host alias, resolved with the connection's SSH config). Wins over `normalize`.
     */
    normalizeIn?: (values: Values) => unknown;
    /** An absent new value keeps whatever the provider chose or reported (target, MAC). */
    absentKeepsOld?: boolean;
}

export interface ChangeRule {
    path: string;
    /** When this row applies, in words (rendered into the docs). */
    when: string;
    /** Narrows the row; the first row of a path whose test holds classifies the change. */
    applies?: (olds: Values, news: Values) => boolean;
    running: ChangeKind;
    shutOff: ChangeKind;
    /** What is run, in words. */
    how: string;
}

export interface RuleTable {
    resource: string;
    properties: readonly PropertySpec[];
    rules: readonly ChangeRule[];
}

export interface ClassifiedChange {
    path: string;
    kind: ChangeKind;
    rule: ChangeRule;
    oldValue: unknown;
    newValue: unknown;
}

/** Pulumi's marker for a value not known during preview. */
export const UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

const SEVERITY: readonly ChangeKind[] = ["none", "config", "live", "reboot", "replace"];

export function valueAt(values: Values, path: string): unknown {
    let current: unknown = values;
    for (const key of path.split(".")) {
        if (current === null || typeof current !== "object") return undefined;
        current = (current as Record<string, unknown>)[key];
    }
    return current;
}

export function containsUnknown(value: unknown): boolean {
    if (value === UNKNOWN_VALUE) return true;
    if (value !== null && typeof value === "object") return Object.values(value).some(containsUnknown);
    return false;
}

function sameValue(a: unknown, b: unknown): boolean {
    return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Safe normalize: a value it cannot parse (bad input) compares as itself; check() reports it.
 * An absent value is normalized too, so it compares as its documented default (`v ?? "virtio"`).
 */
function normalized(spec: PropertySpec, value: unknown, values: Values): unknown {
    try {
        if (spec.normalizeIn && !containsUnknown(value)) return spec.normalizeIn(values);
        return spec.normalize ? spec.normalize(value) : value;
    } catch {
        return value;
    }
}

/** Classifies every changed property; domain state picks the running or shut-off column. */
export function classifyChanges(table: RuleTable, olds: Values, news: Values, running: boolean): ClassifiedChange[] {
    const changes: ClassifiedChange[] = [];
    for (const spec of table.properties) {
        const rawNew = valueAt(news, spec.path);
        if (rawNew === undefined && spec.absentKeepsOld) continue;
        const oldValue = normalized(spec, valueAt(olds, spec.path), olds);
        const newValue = normalized(spec, rawNew, news);
        const rows = table.rules.filter((r) => r.path === spec.path);
        if (containsUnknown(rawNew)) {
            // Unknown until apply: assume the most disruptive outcome this property can have.
            const worst = rows.reduce((a, b) => (rank(b, running) > rank(a, running) ? b : a));
            changes.push({ path: spec.path, kind: kindOf(worst, running), rule: worst, oldValue, newValue: rawNew });
            continue;
        }
        if (sameValue(oldValue, newValue)) continue;
        const rule = rows.find((r) => !r.applies || r.applies(olds, news));
        if (rule) changes.push({ path: spec.path, kind: kindOf(rule, running), rule, oldValue, newValue });
    }
    return changes;
}

function kindOf(rule: ChangeRule, running: boolean): ChangeKind {
    return running ? rule.running : rule.shutOff;
}

function rank(rule: ChangeRule, running: boolean): number {
    return SEVERITY.indexOf(kindOf(rule, running));
}

/** Kinds that the engine must show as a replacement. */
export function needsReplacement(kind: ChangeKind): boolean {
    return kind === "reboot" || kind === "replace";
}
