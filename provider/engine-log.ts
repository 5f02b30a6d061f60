/**
 * Warnings for the engine's log: a change that is allowed but worth a second look (vCPU
 * overcommit). Outside the engine (provider tests) @pulumi/pulumi prints them on stderr.
 */
import * as pulumi from "@pulumi/pulumi";

export function warn(message: string): Promise<void> {
    return pulumi.log.warn(message);
}
