/** Maps the provider's plain field types to what users pass: every field, nested too, a pulumi.Input. */
import type * as pulumi from "@pulumi/pulumi";

export type Inputs<T> = {
    [K in keyof T]: pulumi.Input<T[K] extends string | number | boolean | undefined | null ? T[K] : Inputs<T[K]>>;
};

export type Outputs<T> = {
    readonly [K in keyof T]-?: pulumi.Output<T[K]>;
};
