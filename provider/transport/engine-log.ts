/**
 * Warnings for the engine's log from inside the dynamic provider (`pulumi.log.warn` reaches the
 * engine from the provider process); each text once per process, since every resource resolves
 * the same connection.
 */
const said = new Set<string>();

export function warnOnce(message: string): void {
    if (said.has(message)) return;
    said.add(message);
    // Required when needed: the transport is also used by tests and tools without an engine.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pulumi = require("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
    pulumi.log.warn(message).catch(() => undefined);
}
