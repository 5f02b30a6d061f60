/**
 * The host facts an operation may need to decide, read in the same exec as the domain itself:
 * what a path is, whether a bridge or libvirt network exists, which domains use a MAC, the host's
 * size, the guest's balloon. Each probe is one command line; equal probes of a batch run once.
 */
import type { Virsh } from "./virsh";

export type Probe =
    | { kind: "path"; path: string }
    | { kind: "bridge"; name: string }
    | { kind: "network"; name: string }
    | { kind: "nodeinfo" }
    | { kind: "balloon" }
    | { kind: "macOwners" };

export function probeKey(probe: Probe): string {
    return JSON.stringify(probe);
}

/** Marks each domain's section in the macOwners answer. */
export const MAC_OWNER_MARK = "@@domain ";

/** The quoted command line that answers a probe on the host of `virsh`'s domain. */
export function probeLine(probe: Probe, virsh: Virsh): string {
    switch (probe.kind) {
        case "path": return virsh.commandLine({ host: true, args: ["stat", "-L", "-c", "%F", "--", probe.path] });
        case "bridge": return virsh.commandLine({ host: true, args: ["test", "-d", `/sys/class/net/${probe.name}/bridge`] });
        case "network": return virsh.commandLine({ args: ["net-info", `--network=${probe.name}`] });
        case "nodeinfo": return virsh.commandLine({ args: ["nodeinfo"] });
        case "balloon": return virsh.commandLine({ args: ["dommemstat", `--domain=${virsh.domain}`] });
        case "macOwners":
            // Every domain's NICs in one step; "$d" is expanded by the host's shell, never spliced.
            return `${virsh.commandLine({ args: ["list", "--all", "--name"] })} | while IFS= read -r d; do [ -n "$d" ] || continue; ` +
                `printf '%s%s\\n' '${MAC_OWNER_MARK}' "$d"; ${virsh.commandLine({ args: ["domiflist"] })} --domain="$d" </dev/null; done`;
    }
}
