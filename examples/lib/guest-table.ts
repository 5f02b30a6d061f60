/**
 * The demo's view of a guest, straight from virsh on the hypervisor (not from Pulumi's state):
 * memory and balloon, vCPUs, disks, CD-ROM media and NICs, live next to the persistent config.
 *
 *   node dist/examples/lib/guest-table.js DOMAIN [URI]
 */
import { execFileSync } from "child_process";
import { diskSourcePath, type DiskValues } from "../../provider/xml/disk-xml";
import { parseDomainXml, type DomainXml } from "../../provider/xml/domain-xml";
import type { InterfaceValues } from "../../provider/xml/interface-xml";
import { formatKiB } from "../../provider/units";

function virsh(uri: string, ...args: string[]): string {
    return execFileSync("virsh", ["-q", "-c", uri, ...args], { encoding: "utf8" });
}

function describeDisk(disk: DiskValues): string {
    const source = diskSourcePath(disk);
    // An empty tray has a driver only in the config: showing it would make live and config differ.
    const driver = source === undefined ? "" : [disk.format, disk.cache && `cache=${disk.cache}`, disk.io && `io=${disk.io}`].filter(Boolean).join(" ");
    return `${source ?? "(empty)"}  ${driver ? `${driver}  ` : ""}${disk.bus}${disk.readonly === true ? " ro" : ""}`;
}

function describeNic(nic: InterfaceValues): string {
    return `${nic.type} ${nic.bridge ?? nic.network}  ${nic.model}  link ${nic.linkState ?? "up"}`;
}

/** Rows keyed by device, so live and config line up even when one side lacks a device. */
function rows(xml: DomainXml, balloonKiB?: number): Map<string, string> {
    const out = new Map<string, string>();
    // The live <currentMemory> lags the balloon for a while (rig/README.md): show what the guest holds.
    const memory = balloonKiB === undefined ? formatKiB(xml.currentMemoryKiB) : `${formatKiB(balloonKiB)} (balloon)`;
    out.set("memory", `${memory} of max ${formatKiB(xml.memoryKiB)}`);
    out.set("vCPUs", `${xml.currentVcpus} of max ${xml.maxVcpus}`);
    for (const disk of xml.disks) out.set(`${disk.device === "cdrom" ? "cdrom" : "disk"} ${disk.target}`, describeDisk(disk));
    for (const nic of xml.interfaces) out.set(`nic ${nic.mac}`, describeNic(nic));
    return out;
}

function main(): void {
    const [domain, uri = "qemu:///system"] = process.argv.slice(2);
    if (!domain) throw new Error("usage: guest-table DOMAIN [URI]");
    const state = virsh(uri, "domstate", domain).trim();
    const config = parseDomainXml(virsh(uri, "dumpxml", "--inactive", domain));
    const liveXml = state === "running" ? parseDomainXml(virsh(uri, "dumpxml", domain)) : undefined;
    const actual = /^actual\s+(\d+)/m.exec(liveXml ? virsh(uri, "dommemstat", domain) : "")?.[1];
    const live = liveXml ? rows(liveXml, actual === undefined ? undefined : Number(actual)) : new Map<string, string>();
    const persistent = rows(config);

    const names = [...new Set([...live.keys(), ...persistent.keys()])];
    const width = Math.max(...names.map((n) => n.length), 6);
    const liveWidth = Math.max(...[...live.values()].map((v) => v.length), 4);
    console.log(`  ${domain}: ${state}${liveXml?.id ? `, domain id ${liveXml.id}` : ""}`);
    console.log(`  ${"device".padEnd(width)}  ${"live (virsh dumpxml)".padEnd(liveWidth)}  config (dumpxml --inactive)`);
    for (const name of names) {
        const now = live.get(name) ?? "-";
        const saved = persistent.get(name) ?? "-";
        const sameAsLive = saved === now.replace(" (balloon)", "");
        console.log(`  ${name.padEnd(width)}  ${now.padEnd(liveWidth)}  ${sameAsLive ? "same" : saved}`);
    }
}

main();
