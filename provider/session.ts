/** From a resource's connection and domain to a Virsh command builder, with the batch key for that domain. */
import type { ConnectionInputs } from "./contract";
import { assertQuotable } from "./quoting";
import { remoteHostFor } from "./transport/ssh-host";
import { Virsh } from "./virsh/virsh";

export const DEFAULT_URI = "qemu:///system";
export const DEFAULT_OPERATION_TIMEOUT_SECONDS = 120;

export interface DomainTarget {
    connection: ConnectionInputs;
    domain: string;
}

export function virshFor({ connection, domain }: DomainTarget): Virsh {
    assertQuotable(domain, "domain");
    const uri = connection.uri ?? DEFAULT_URI;
    assertQuotable(uri, "connection.uri");
    return new Virsh(remoteHostFor(connection), uri, domain, connection.sudo === true,
        connection.operationTimeout ?? DEFAULT_OPERATION_TIMEOUT_SECONDS);
}

/** Identifies one domain on one host, for its batches and for resource ids. */
export function domainKey({ connection, domain }: DomainTarget): string {
    return `${connection.host}:${connection.port ?? 22}/${connection.uri ?? DEFAULT_URI}/${domain}`;
}
