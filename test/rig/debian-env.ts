/**
 * The rig's real distribution guests (issue 11): Debian 12 with systemd and udev, pll-deb1 with
 * the guest agent's channel and pll-deb2 without (rig/up.sh). Their own view comes from the
 * console, where a unit prints `PLL-GUEST-VIEW MemTotal=… cpus=… vda=…` whenever it changes.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cpuListCount } from "../../provider/guest-view";
import type { RigEnv } from "./rig-env";
import { virshLocalResult, waitFor } from "./rig-env";

export const DEB_AGENT = "pll-deb1";
export const DEB_NO_AGENT = "pll-deb2";

export interface DebianView {
    /** MemTotal in kB, as the guest's /proc/meminfo says. */
    memTotalKiB: number;
    /** CPUs online in the guest (/sys/devices/system/cpu/online). */
    onlineCpus: number;
    /** The CPU list itself, for messages. */
    cpus: string;
}

/** The fields of the last view line the guest printed (MemTotal, cpus, vda, vdb…); undefined before its first. */
export function debianViewFields(env: RigEnv, domain: string): Record<string, string> | undefined {
    const log = join(env.PLL_RIG_DIR, `console-${domain}.log`);
    const lines = existsSync(log) ? readFileSync(log, "latin1").split(/\r?\n/).filter((l) => l.startsWith("PLL-GUEST-VIEW ")) : [];
    const last = lines[lines.length - 1];
    return last === undefined ? undefined : Object.fromEntries(last.trim().split(" ").slice(1).map((pair) => pair.split("=")));
}

/** The last view the guest printed; undefined before its first. */
export function debianView(env: RigEnv, domain: string): DebianView | undefined {
    const fields = debianViewFields(env, domain);
    if (!fields) return undefined;
    return { memTotalKiB: Number(fields.MemTotal), onlineCpus: cpuListCount(fields.cpus ?? ""), cpus: fields.cpus ?? "" };
}

/** Waits until what `read` takes from the guest's console satisfies `check`. */
function waitForConsole<T>(domain: string, what: string, read: () => T | undefined, check: (value: T) => boolean, timeoutMs: number): Promise<T> {
    return waitFor(`${domain}'s own view: ${what}`, () => {
        const value = read();
        return value !== undefined && check(value) ? value : undefined;
    }, { timeoutMs, describe: () => JSON.stringify(read()) });
}

/** Waits until the fields of the guest's console view satisfy `check`. */
export function waitForFields(env: RigEnv, domain: string, what: string, check: (fields: Record<string, string>) => boolean): Promise<Record<string, string>> {
    return waitForConsole(domain, what, () => debianViewFields(env, domain), check, 30_000);
}

/** Waits until the guest's console view satisfies `check`. */
export function waitForView(env: RigEnv, domain: string, what: string, check: (view: DebianView) => boolean, timeoutMs = 30_000): Promise<DebianView> {
    return waitForConsole(domain, what, () => debianView(env, domain), check, timeoutMs);
}

/** The view once MemTotal stops moving (a balloon settling): two reads 3 s apart agree. */
export function steadyView(env: RigEnv, domain: string): Promise<DebianView> {
    let lastTotal: number | undefined;
    return waitFor(`${domain}'s MemTotal to settle`, () => {
        const view = debianView(env, domain);
        const steady = view !== undefined && view.memTotalKiB === lastTotal;
        lastTotal = view?.memTotalKiB;
        return steady ? view : undefined;
    }, { timeoutMs: 60_000, intervalMs: 3000, describe: () => JSON.stringify(debianView(env, domain)) });
}

/** The test's own agent call: `virsh qemu-agent-command DOMAIN JSON`, parsed. */
export function agentCall(domain: string, command: object): unknown {
    const result = virshLocalResult(["qemu-agent-command", domain, JSON.stringify(command)]);
    if (result.status !== 0) throw new Error(`qemu-agent-command on ${domain} failed: ${result.stderr.trim()}`);
    return (JSON.parse(result.stdout) as { return: unknown }).return;
}

/** The guest agent answers (it starts a few seconds after the guest's own ready line). */
export function waitForAgent(domain: string): Promise<true> {
    return waitFor(`${domain}'s guest agent`, () => virshLocalResult(["guestvcpus", domain]).status === 0 || undefined,
        { timeoutMs: 120_000, intervalMs: 1000, describe: () => virshLocalResult(["guestvcpus", domain]).stderr.trim() });
}

/** The test's own `virsh guestvcpus`: CPUs online in the guest. */
export function onlineByAgent(domain: string): number {
    const out = virshLocalResult(["guestvcpus", domain]);
    if (out.status !== 0) throw new Error(`virsh guestvcpus ${domain}: ${out.stderr.trim()}`);
    return cpuListCount(/^online\s*:\s*(\S*)/m.exec(out.stdout)?.[1] ?? "");
}

/** The agent's memory blocks that are offline. */
export function offlineMemoryBlocks(domain: string): number[] {
    const blocks = agentCall(domain, { execute: "guest-get-memory-blocks" }) as Array<{ "phys-index": number; online: boolean }>;
    return blocks.filter((b) => !b.online).map((b) => b["phys-index"]);
}

/**
 * Runs a command inside the guest through its agent (`guest-exec`) and returns its stdout: the
 * guest's own answer, for what the console report does not show (NICs, CD-ROM media).
 */
export async function guestExec(domain: string, path: string, args: string[]): Promise<string> {
    const { pid } = agentCall(domain, { execute: "guest-exec", arguments: { path, arg: args, "capture-output": true } }) as { pid: number };
    const status = await waitFor(`${path} ${args.join(" ")} in ${domain} to finish`, () => {
        const s = agentCall(domain, { execute: "guest-exec-status", arguments: { pid } }) as { exited: boolean; exitcode?: number; "out-data"?: string; "err-data"?: string };
        return s.exited ? s : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    const text = (data?: string) => Buffer.from(data ?? "", "base64").toString("latin1");
    if (status.exitcode !== 0) throw new Error(`${path} ${args.join(" ")} in ${domain} exited ${status.exitcode}: ${text(status["err-data"])}`);
    return text(status["out-data"]);
}

/** The MAC addresses of the guest's network interfaces, as the guest itself lists them (agent). */
export function guestMacs(domain: string): string[] {
    const interfaces = agentCall(domain, { execute: "guest-network-get-interfaces" }) as Array<{ "hardware-address"?: string }>;
    return interfaces.map((i) => (i["hardware-address"] ?? "").toLowerCase()).filter((mac) => mac && mac !== "00:00:00:00:00:00");
}
