/** From a resource's connection and domain to a Virsh runner, with the lock key for that domain. */
import type { ConnectionInputs } from "./contract";
import { assertQuotable } from "./quoting";
import { remoteHostFor } from "./transport/ssh-host";
import { Virsh } from "./virsh/virsh";

export const DEFAULT_URI = "qemu:///system";

export interface DomainTarget {
    connection: ConnectionInputs;
    domain: string;
}

export function virshFor({ connection, domain }: DomainTarget): Virsh {
    assertQuotable(domain, "domain");
    const uri = connection.uri ?? DEFAULT_URI;
    assertQuotable(uri, "connection.uri");
    return new Virsh(remoteHostFor(connection), uri, domain, connection.sudo === true);
}

/** Identifies one domain on one host, for the lock and for resource ids. */
export function domainKey({ connection, domain }: DomainTarget): string {
    return `${connection.host}:${connection.port ?? 22}/${connection.uri ?? DEFAULT_URI}/${domain}`;
}
