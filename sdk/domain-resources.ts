import type * as pulumi from "@pulumi/pulumi";
import type { DomainResourcesInputs, DomainResourcesOutputs } from "../provider/contract";
import { providerFilled, type Inputs, type Outputs } from "./inputs";
import { LiveResource } from "./live-resource";

/** Memory, vCPUs and tuning (CPU shares, caps and pins, memory limits, I/O weight) of an existing domain. See the README's rule table for what is live. */
export type DomainResourcesArgs = Inputs<DomainResourcesInputs>;

const FILLED = providerFilled<DomainResourcesInputs, DomainResourcesOutputs>()(["currentMemoryKiB", "maxMemoryKiB", "balloonActualKiB", "balloonSettled", "bootMaxMemoryKiB", "hotplugSizeKiB", "hotplugRequestedKiB", "hotplugCurrentKiB", "hotplugSettled", "currentVcpus",
    "maximumVcpus", "guestAgent", "guestVcpus", "guestMemoryKiB", "state", "pendingReboot", "pendingChanges", "liveTuning", "configTuning"]);

/**
 * Manages the memory, vCPUs and tuning of an existing libvirt domain: live where libvirt can, otherwise as
 * `rebootPolicy` allows. Deleting it leaves the domain as it is and only stops managing it.
 */
export class DomainResources extends LiveResource {
    constructor(name: string, args: DomainResourcesArgs, opts?: pulumi.CustomResourceOptions) {
        super("domainResources", "DomainResources", name, args, FILLED, opts);
    }
}
export interface DomainResources extends Outputs<DomainResourcesOutputs> {}
