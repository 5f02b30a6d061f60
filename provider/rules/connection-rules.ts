/**
 * Rows every resource shares: which domain on which host, and how we reach it. The host's
 * identity is the address it resolves to (an SSH config alias → its HostName and Port), the port
 * and the libvirt URI; everything else in `connection` (user, credentials, agent, SSH config file,
 * jump hosts) is how to get there, stored for the next operation.
 */
import type { ConnectionInputs } from "../contract";
import { machineEnv, resolvedHostAndPort } from "../transport/ssh-config-resolution";
import type { ChangeRule, PropertySpec, Values } from "./rule-table";
import { valueAt } from "./rule-table";

const PLACEMENT = ["connection.host", "connection.port", "connection.uri"] as const;

function withoutPlacement(connection: unknown): string {
    const { host: _h, port: _p, uri: _u, ...rest } = (connection ?? {}) as Record<string, unknown>;
    return JSON.stringify(rest, Object.keys(rest).sort());
}

/** Host and port as the connection resolves them; unreadable input compares as written (check() reports it). */
function resolvedPlacement(values: Values): { host: unknown; port: unknown } {
    const connection = valueAt(values, "connection") as ConnectionInputs | undefined;
    try {
        if (connection && typeof connection.host === "string") return resolvedHostAndPort(connection, machineEnv());
    } catch {
        // Fall through to the values as written.
    }
    return { host: connection?.host, port: connection?.port ?? 22 };
}

/** The host a resource lives on, as resolved (host, port, libvirt URI), in one comparable string. */
export function placementOf(values: Values): string {
    const { host, port } = resolvedPlacement(values);
    return JSON.stringify([host, port, valueAt(values, "connection.uri") ?? "qemu:///system"]);
}

function rawPlacementOf(values: Values): string {
    return JSON.stringify([valueAt(values, "connection.host"), valueAt(values, "connection.port") ?? 22,
        valueAt(values, "connection.uri") ?? "qemu:///system"]);
}

export const PLACEMENT_PROPERTIES: readonly PropertySpec[] = [
    { path: "domain" },
    { path: "connection.host", normalizeIn: (values) => resolvedPlacement(values).host },
    { path: "connection.port", normalizeIn: (values) => resolvedPlacement(values).port },
    { path: "connection.uri", normalize: (v) => v ?? "qemu:///system" },
    { path: "connection" },
];

export const PLACEMENT_RULES: readonly ChangeRule[] = [
    { path: "domain", when: "another domain", running: "replace", shutOff: "replace",
        how: "stops managing the old domain, applies to the new one" },
    ...PLACEMENT.map((path): ChangeRule => ({
        path, when: "another host (an SSH config alias counts as the HostName and Port it resolves to) or libvirt URI",
        running: "replace", shutOff: "replace",
        how: "stops managing the old domain, applies to the new one",
    })),
    { path: "connection", when: "user, credentials, agent, sshConfig, proxyJump, host-key settings, sudo, timeouts; another alias for the same host",
        applies: (olds: Values, news: Values) =>
            withoutPlacement(valueAt(olds, "connection")) !== withoutPlacement(valueAt(news, "connection"))
            // An alias renamed (host written differently, same resolved host, port and URI): stored only.
            || (rawPlacementOf(olds) !== rawPlacementOf(news) && placementOf(olds) === placementOf(news)),
        running: "none", shutOff: "none", how: "stored; used from the next operation on" },
];
