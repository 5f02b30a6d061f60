/**
 * Shared by the growth suites (issue 9): their own guest pll-grow1 (rig/up.sh; an initramfs that
 * prints the guest's own view on its console), the QEMU process, and the engine-log warnings a
 * provider call emits.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { RigEnv } from "./rig-env";

export const GROW1 = "pll-grow1";

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
