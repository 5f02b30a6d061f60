/**
 * What runs inside the Pulumi engine: the four dynamic providers, plus the rule tables and
 * errors for tools and tests. `sdk/` reaches this module only by package name, at run time.
 */
import { attachedCdromProvider } from "./providers/attached-cdrom";
import { attachedDiskProvider } from "./providers/attached-disk";
import { attachedInterfaceProvider } from "./providers/attached-interface";
import { domainResourcesProvider } from "./providers/domain-resources";

export const providers = {
    domainResources: domainResourcesProvider,
    attachedDisk: attachedDiskProvider,
    attachedInterface: attachedInterfaceProvider,
    attachedCdrom: attachedCdromProvider,
} as const;

export type ProviderName = keyof typeof providers;

export * from "./contract";
export * from "./errors";
export * as rules from "./rules";
export { closeAllHosts } from "./transport/ssh-host";
export { formatKiB, parseMemoryKiB } from "./units";
