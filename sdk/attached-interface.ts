import type * as pulumi from "@pulumi/pulumi";
import type { AttachedInterfaceInputs, AttachedInterfaceOutputs } from "../provider/contract";
import { providerFilled, type Inputs, type Outputs } from "./inputs";
import { LiveResource } from "./live-resource";

export type AttachedInterfaceArgs = Inputs<AttachedInterfaceInputs>;

const FILLED = providerFilled<AttachedInterfaceInputs, AttachedInterfaceOutputs>()(["mac", "model", "linkState", "attachedLive", "attachedConfig", "domainRunning"]);

/** A NIC on a host bridge or libvirt network; source and link state change live, the rest replaces. */
export class AttachedInterface extends LiveResource {
    constructor(name: string, args: AttachedInterfaceArgs, opts?: pulumi.CustomResourceOptions) {
        super("attachedInterface", "AttachedInterface", name, args, FILLED, opts);
    }
}
export interface AttachedInterface extends Outputs<AttachedInterfaceOutputs> {}
