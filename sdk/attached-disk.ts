import type * as pulumi from "@pulumi/pulumi";
import type { AttachedDiskInputs, AttachedDiskOutputs } from "../provider/contract";
import type { Inputs, Outputs } from "./inputs";
import { LiveResource } from "./live-resource";

export type AttachedDiskArgs = Inputs<AttachedDiskInputs>;

const OUTPUT_ONLY = ["attachedLive", "attachedConfig"] as const satisfies readonly Exclude<keyof AttachedDiskOutputs, keyof AttachedDiskInputs>[];

/** A file or block device hot-plugged into a running domain; any change detaches and attaches anew. */
export class AttachedDisk extends LiveResource {
    constructor(name: string, args: AttachedDiskArgs, opts?: pulumi.CustomResourceOptions) {
        super("attachedDisk", "AttachedDisk", name, args, OUTPUT_ONLY, opts);
    }
}
export interface AttachedDisk extends Outputs<AttachedDiskOutputs> {}
