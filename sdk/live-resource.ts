/**
 * The base of the four resources: a dynamic resource with its own type token
 * (`pulumi-nodejs:dynamic/libvirt-live:<Type>`), whose connection is always stored as a secret.
 */
import * as pulumi from "@pulumi/pulumi";
import type { ProviderName } from "../provider";
import { lazyProvider } from "./lazy-provider";

export const MODULE = "libvirt-live";

export abstract class LiveResource extends pulumi.dynamic.Resource {
    protected constructor(provider: ProviderName, type: string, name: string, args: { connection: unknown },
        outputNames: readonly string[], opts?: pulumi.CustomResourceOptions) {
        const props: pulumi.Inputs = { ...args, connection: pulumi.secret(args.connection as pulumi.Input<object>) };
        // Names the provider fills in are registered (as undefined when not given) so the engine exposes them as outputs.
        for (const key of outputNames) if (props[key] === undefined) props[key] = undefined;
        super(lazyProvider(provider), name, props, opts, MODULE, type);
    }
}
