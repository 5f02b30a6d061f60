/** What a virsh stderr usually means for the user, first match wins. */
export const STDERR_HINTS: ReadonlyArray<{ pattern: RegExp; hint: string }> = [
    { pattern: /cannot acquire state change lock/i,
        hint: "another libvirt job held the domain through every retry (the provider retries for up to 90 s): `virsh domjobinfo DOMAIN` shows it; let it finish or abort it (`virsh domjobabort DOMAIN`), then run again" },
    { pattern: /failed to get domain|Domain not found|no domain with matching name/i,
        hint: "check the domain name: `virsh list --all` on the host lists them" },
    { pattern: /a password is required|a terminal is required|is not allowed to execute/i,
        hint: "sudo asked for a password: allow this user passwordless sudo for virsh, or set connection.sudo to false" },
    { pattern: /virsh: (command )?not found|sudo: virsh: command not found/i,
        hint: "install libvirt-clients on the host" },
    { pattern: /no connection driver available|unexpected \w+ URI path|Unable to parse URI/i,
        hint: "connection.uri names no hypervisor the host's libvirt can open: use e.g. qemu:///system (`virsh -c URI uri` on the host tries one)" },
    { pattern: /failed to connect to the hypervisor|Failed to connect socket/i,
        hint: "check connection.uri and that libvirtd runs on the host" },
    { pattern: /authentication (unavailable|failed)|Permission denied|access denied/i,
        hint: "the SSH user may not manage libvirt: add it to the libvirt group or set connection.sudo: true" },
    { pattern: /not supported device type|unplug request timed out|does not support ejectable media/i,
        hint: "this change cannot be made live on this guest; see the rule table in the README" },
    { pattern: /cannot rename file|Failed to write file|Read-only file system|No space left on device/i,
        hint: "libvirt could not write the domain's persistent config (under /etc/libvirt/qemu on the host): make it writable, then run again" },
    // libvirt words it per setting: "cgroup CPU controller is not mounted", "blkio cgroup isn't mounted".
    { pattern: /controller is not mounted|cgroup isn't mounted/i,
        hint: "libvirt runs this guest without that cgroup controller: list it in cgroup_controllers in /etc/libvirt/qemu.conf on the host, restart libvirtd, then restart the guest (a guest started before keeps no cgroups); vcpupin and emulatorpin work without" },
    { pattern: /Timed out during operation/i,
        hint: "libvirt timed out through every retry (the provider retries for up to 90 s): check the domain with `virsh domjobinfo DOMAIN`, then run again" },
];

/** sudo itself refused (before running the command): never an answer from the command. */
export const SUDO_REFUSED = /^sudo: |is not allowed to execute/m;

/** Failures that mean "nothing happened yet, try again shortly". */
// An unplug that timed out is not transient: it may have half happened (RIG.md), so it is not repeated.
// Nor is an unknown connection.uri: virsh prints "failed to connect to the hypervisor" for it too.
const NOT_STARTED_STDERR = /cannot acquire state change lock|Timed out during operation(?!: vcpu unplug)|failed to connect to the hypervisor(?![\s\S]*(?:no connection driver available|URI path|Unable to parse URI))|Failed to connect socket/i;

/**
 * libvirtd went away while it held the call ("Cannot recv data", "End of file while reading
 * data"): the change may or may not have happened, so it is read back before anything runs again.
 * A connection that never opened ("failed to connect") made no call at all.
 */
const CALL_LOST_STDERR = /Cannot recv data|End of file while reading data|Disconnected from \S+ due to/i;

export type FailureClass = "notStarted" | "callLost" | "final";

export function failureClass(stderr: string): FailureClass {
    if (NOT_STARTED_STDERR.test(stderr)) return "notStarted";
    return CALL_LOST_STDERR.test(stderr) ? "callLost" : "final";
}

export function hintFor(stderr: string, fallback: string): string {
    return STDERR_HINTS.find((h) => h.pattern.test(stderr))?.hint ?? fallback;
}
