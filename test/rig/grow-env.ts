/**
 * Shared by the growth suites (issue 9): their own guest pll-grow1 (rig/up.sh; an initramfs that
 * prints the guest's own view on its console), the QEMU process, and the engine-log warnings a
 * provider call emits.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { RigEnv } from "./rig-env";

export const GROW1 = "pll-grow1";
/** pll-grow2: boot maximum 512 MiB and a 1 GiB virtio-mem device (2 MiB blocks, none plugged at boot). */
export const GROW2 = "pll-grow2";

/** The QEMU process of a running domain (libvirt's pid file). */
export function qemuPid(domain: string): string {
    return readFileSync(`/run/libvirt/qemu/${domain}.pid`, "utf8").trim();
}

function consoleText(env: RigEnv, domain: string): string {
    const log = join(env.PLL_RIG_DIR, `console-${domain}.log`);
    return existsSync(log) ? readFileSync(log, "latin1") : "";
}

/**
 * The guest's own view, from the last `PLL-GUEST-VIEW MemTotal=… vdb=…` line its init printed:
 * MemTotal in kB and each virtio disk's size in 512-byte sectors.
 */
export function guestView(env: RigEnv, domain: string): Record<string, number> {
    const lines = consoleText(env, domain).split(/\r?\n/).filter((l) => l.startsWith("PLL-GUEST-VIEW "));
    const last = lines[lines.length - 1] ?? "";
    return Object.fromEntries(last.split(" ").slice(1).map((pair) => pair.split("=")).map(([k, v]) => [k, Number(v)]));
}

/** The vCPUs the guest's init brought online after a hot-add (its console's PLL-GUEST-CPU-ONLINE lines). */
export function guestOnlinedCpus(env: RigEnv, domain: string): string[] {
    return [...consoleText(env, domain).matchAll(/PLL-GUEST-CPU-ONLINE \/sys\/devices\/system\/cpu\/(cpu\d+)\/online/g)].map((m) => m[1]);
}

/** Runs `action`, collecting what @pulumi/pulumi's log.warn prints outside the engine. */
export async function withWarnings<T>(action: () => Promise<T>): Promise<{ result: T; warnings: string[] }> {
    const warnings: string[] = [];
    const original = console.warn;
    console.warn = (...args: unknown[]) => { warnings.push(args.map(String).join(" ")); };
    try {
        return { result: await action(), warnings };
    } finally {
        console.warn = original;
    }
}

/** A disk's `<iotune>` limits in one domain XML, by libvirt's element names; {} when it has none. */
export function iotuneIn(xml: string, target: string): Record<string, number> {
    const disk = [...xml.matchAll(/<disk\s[^>]*>[\s\S]*?<\/disk>/g)].map(([block]) => block).find((b) => new RegExp(`<target dev='${target}'`).test(b));
    const iotune = /<iotune>([\s\S]*?)<\/iotune>/.exec(disk ?? "")?.[1] ?? "";
    return Object.fromEntries([...iotune.matchAll(/<(\w+)>(\d+)<\/\1>/g)].map(([, k, v]) => [k, Number(v)]));
}

/** The six limits `virsh blkdeviotune` reports for a disk (the running guest's), by name. */
export function blkdeviotuneOf(read: (args: string[]) => string, domain: string, target: string): Record<string, number> {
    const out = read(["blkdeviotune", domain, target]);
    const names = ["total_bytes_sec", "read_bytes_sec", "write_bytes_sec", "total_iops_sec", "read_iops_sec", "write_iops_sec"];
    return Object.fromEntries(names.map((n) => [n, Number(new RegExp(`^${n}\\s*:\\s*(\\d+)`, "m").exec(out)?.[1])]));
}
