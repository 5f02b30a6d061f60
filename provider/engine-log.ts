/**
 * Warnings for the engine's log from inside the dynamic provider: `pulumi.log.warn` reaches the
 * engine from the provider process (outside an engine, @pulumi/pulumi prints it on stderr).
 * @pulumi/pulumi is required only when a warning is said: the transport also serves tests and
 * tools that run without an engine.
 */
function pulumiLog(): typeof import("@pulumi/pulumi").log {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require("@pulumi/pulumi") as typeof import("@pulumi/pulumi")).log;
}

export function warn(message: string): Promise<void> {
    return pulumiLog().warn(message);
}

/** A line of progress in the engine's log (`pulumi up` shows it while the operation runs). */
export function info(message: string): Promise<void> {
    return pulumiLog().info(message);
}

const said = new Set<string>();

/** A warning said once per process (every resource resolves the same connection, say). */
export function warnOnce(message: string): void {
    if (said.has(message)) return;
    said.add(message);
    warn(message).catch(() => undefined);
}
