/** What a virsh stderr usually means for the user, first match wins. */
export const STDERR_HINTS: ReadonlyArray<{ pattern: RegExp; hint: string }> = [
    { pattern: /failed to get domain|Domain not found|no domain with matching name/i,
        hint: "check the domain name: `virsh list --all` on the host lists them" },
    { pattern: /a password is required|a terminal is required/i,
        hint: "sudo asked for a password: allow this user passwordless sudo for virsh, or set connection.sudo to false" },
    { pattern: /virsh: (command )?not found|sudo: virsh: command not found/i,
        hint: "install libvirt-clients on the host" },
    { pattern: /failed to connect to the hypervisor|Failed to connect socket/i,
        hint: "check connection.uri and that libvirtd runs on the host" },
    { pattern: /authentication (unavailable|failed)|Permission denied|access denied/i,
        hint: "the SSH user may not manage libvirt: add it to the libvirt group or set connection.sudo: true" },
    { pattern: /not supported device type|unplug request timed out|does not support ejectable media/i,
        hint: "this change cannot be made live on this guest; see the rule table in the README" },
];

/** Failures that mean "nothing happened yet, try again shortly". */
export const TRANSIENT_STDERR = /cannot acquire state change lock|Timed out during operation|failed to connect to the hypervisor|Failed to connect socket|Cannot recv data|End of file while reading data/i;

export function hintFor(stderr: string, fallback: string): string {
    return STDERR_HINTS.find((h) => h.pattern.test(stderr))?.hint ?? fallback;
}
