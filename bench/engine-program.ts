/**
 * The Pulumi program the benchmark's engine runs (bench/round-trips.ts writes a Pulumi.yaml beside
 * its compiled form and runs the plain `pulumi` CLI on it). What to create comes from the
 * environment, so one program serves every workload: PLL_BENCH_PROGRAM is a BenchProgram as JSON.
 */
import * as pulumi from "@pulumi/pulumi";
import { readFileSync } from "fs";
import { AttachedDisk, AttachedInterface, DomainResources } from "pulumi-libvirt-live";
import type { ConnectionInputs } from "pulumi-libvirt-live/provider";

export interface BenchGuest {
    domain: string;
    disks: string[];
    nics: number;
    bridge: string;
    vcpus?: number;
}

export interface BenchProgram {
    /** The connection without credentials; the key is read from `keyPath`. */
    connection: Omit<ConnectionInputs, "privateKey">;
    keyPath: string;
    guests: BenchGuest[];
}

function program(): void {
    const spec = JSON.parse(process.env.PLL_BENCH_PROGRAM ?? "") as BenchProgram;
    const connection = { ...spec.connection, privateKey: pulumi.secret(readFileSync(spec.keyPath, "utf8")) };
    for (const guest of spec.guests) {
        const { domain } = guest;
        guest.disks.forEach((source, i) => new AttachedDisk(`${domain}-disk${i}`, { connection, domain, source }));
        for (let i = 0; i < guest.nics; i++) new AttachedInterface(`${domain}-nic${i}`, { connection, domain, type: "bridge", source: guest.bridge });
        if (guest.vcpus !== undefined) new DomainResources(`${domain}-size`, { connection, domain, vcpus: guest.vcpus });
    }
}

program();
