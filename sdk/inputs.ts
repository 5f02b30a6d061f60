/** Maps the provider's plain field types to what users pass: every field, nested too, a pulumi.Input. */
import type * as pulumi from "@pulumi/pulumi";

export type Inputs<T> = {
    [K in keyof T]: pulumi.Input<T[K] extends string | number | boolean | undefined | null ? T[K] : Inputs<T[K]>>;
};

export type Outputs<T> = {
    readonly [K in keyof T]-?: pulumi.Output<T[K]>;
};

/**
 * Outputs the provider fills in: output-only fields, and optional inputs it always reports (a MAC or
 * target libvirt chose). The engine exposes only registered names, so the SDK registers these.
 */
export type ProviderFilled<I, O> = {
    [K in keyof O]-?: K extends keyof I ? ({} extends Pick<I, K> ? (undefined extends O[K] ? never : K) : never) : K;
}[keyof O] & string;

/** The list of `ProviderFilled` names, checked complete at compile time (a missing name is a type error). */
export function providerFilled<I, O>() {
    return <const N extends readonly ProviderFilled<I, O>[]>(
        names: N & ([Exclude<ProviderFilled<I, O>, N[number]>] extends [never] ? unknown : { missing: Exclude<ProviderFilled<I, O>, N[number]> }),
    ): readonly string[] => names;
}
