import type * as pulumi from "@pulumi/pulumi";
import type { AttachedInterfaceInputs, AttachedInterfaceOutputs } from "../provider/contract";
import type { Inputs, Outputs } from "./inputs";
import { LiveResource } from "./live-resource";

export type AttachedInterfaceArgs = Inputs<AttachedInterfaceInputs>;

const OUTPUT_ONLY = ["attachedLive", "attachedConfig"] as const satisfies readonly Exclude<keyof AttachedInterfaceOutputs, keyof AttachedInterfaceInputs>[];

/** A NIC on a host bridge or libvirt network; source and link state change live, the rest replaces. */
export class AttachedInterface extends LiveResource {
    constructor(name: string, args: AttachedInterfaceArgs, opts?: pulumi.CustomResourceOptions) {
        super("attachedInterface", "AttachedInterface", name, args, OUTPUT_ONLY, opts);
    }
}
export interface AttachedInterface extends Outputs<AttachedInterfaceOutputs> {}
