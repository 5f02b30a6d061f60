/**
 * The provider object the engine serializes into state. It must stay tiny (closure serialization
 * fails on client objects and deep import graphs), so each method loads the real implementation
 * by package name when it runs inside the engine's provider process.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { ProviderName } from "../provider";

export function lazyProvider(name: ProviderName): pulumi.dynamic.ResourceProvider {
    const load = (): pulumi.dynamic.ResourceProvider =>
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        require("pulumi-libvirt-live/provider").providers[name];
    return {
        check: (olds, news) => load().check!(olds, news),
        diff: (id, olds, news) => load().diff!(id, olds, news),
        create: (inputs) => load().create(inputs),
        read: (id, props) => load().read!(id, props),
        update: (id, olds, news) => load().update!(id, olds, news),
        delete: (id, props) => load().delete!(id, props),
    };
}
