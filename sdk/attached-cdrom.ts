import type * as pulumi from "@pulumi/pulumi";
import type { AttachedCdromInputs, AttachedCdromOutputs } from "../provider/contract";
import { providerFilled, type Inputs, type Outputs } from "./inputs";
import { LiveResource } from "./live-resource";

export type AttachedCdromArgs = Inputs<AttachedCdromInputs>;

const FILLED = providerFilled<AttachedCdromInputs, AttachedCdromOutputs>()(["target", "bus", "ownsDrive", "lastMediaChange", "attachedLive", "attachedConfig", "domainRunning"]);

/** An ISO in a CD-ROM drive: an existing drive's media, or a hot-plugged drive. Media swaps are live. */
export class AttachedCdrom extends LiveResource {
    constructor(name: string, args: AttachedCdromArgs, opts?: pulumi.CustomResourceOptions) {
        super("attachedCdrom", "AttachedCdrom", name, args, FILLED, opts);
    }
}
export interface AttachedCdrom extends Outputs<AttachedCdromOutputs> {}
