import type * as pulumi from "@pulumi/pulumi";
import type { AttachedDiskInputs, AttachedDiskOutputs } from "../provider/contract";
import { providerFilled, type Inputs, type Outputs } from "./inputs";
import { LiveResource } from "./live-resource";

export type AttachedDiskArgs = Inputs<AttachedDiskInputs>;

const FILLED = providerFilled<AttachedDiskInputs, AttachedDiskOutputs>()(["target", "sourceType", "bus", "format", "attachedLive", "attachedConfig", "domainRunning", "imageCreated", "imageIdentity", "instance", "capacityBytes"]);

/** A file or block device hot-plugged into a running domain; size (growth) and I/O limits change live, any other device field detaches and attaches anew (the same image file: a re-plug never recreates it). */
export class AttachedDisk extends LiveResource {
    constructor(name: string, args: AttachedDiskArgs, opts?: pulumi.CustomResourceOptions) {
        super("attachedDisk", "AttachedDisk", name, args, FILLED, opts);
    }
}
export interface AttachedDisk extends Outputs<AttachedDiskOutputs> {}
