/** Rows every resource shares: which domain on which host, and how we reach it. */
import type { ChangeRule, PropertySpec, Values } from "./rule-table";
import { valueAt } from "./rule-table";

const PLACEMENT = ["connection.host", "connection.port", "connection.uri"] as const;

function withoutPlacement(connection: unknown): string {
    const { host: _h, port: _p, uri: _u, ...rest } = (connection ?? {}) as Record<string, unknown>;
    return JSON.stringify(rest, Object.keys(rest).sort());
}

export const PLACEMENT_PROPERTIES: readonly PropertySpec[] = [
    { path: "domain" },
    { path: "connection.host" },
    { path: "connection.port", normalize: (v) => v ?? 22 },
    { path: "connection.uri", normalize: (v) => v ?? "qemu:///system" },
    { path: "connection" },
];

export const PLACEMENT_RULES: readonly ChangeRule[] = [
    { path: "domain", when: "another domain", running: "replace", shutOff: "replace",
        how: "stops managing the old domain, applies to the new one" },
    ...PLACEMENT.map((path): ChangeRule => ({
        path, when: "another host or libvirt URI", running: "replace", shutOff: "replace",
        how: "stops managing the old domain, applies to the new one",
    })),
    { path: "connection", when: "user, credentials, host-key settings, sudo, timeouts",
        applies: (olds: Values, news: Values) =>
            withoutPlacement(valueAt(olds, "connection")) !== withoutPlacement(valueAt(news, "connection")),
        running: "none", shutOff: "none", how: "stored; used from the next operation on" },
];
