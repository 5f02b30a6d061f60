/**
 * Facts about a rig guest that the engine tests read on their own channel (files libvirt writes
 * on this machine, and `virsh` through rig-env.ts): whether the guest restarted, and resets of
 * several guests at once.
 */
import { spawn } from "child_process";
import { existsSync, readFileSync } from "fs";
import { join } from "path";
import { backgroundResetsDone, domId, REPO_ROOT } from "../rig/rig-env";

/** The running QEMU's pid, from libvirt's pid file; fails when that process is gone. */
export function qemuPid(domain: string): number {
    const file = `/run/libvirt/qemu/${domain}.pid`;
    const pid = Number(readFileSync(file, "utf8").trim());
    if (!pid || !existsSync(`/proc/${pid}`)) throw new Error(`${file} names pid ${pid}, which is not running`);
    return pid;
}

/** How often libvirt started the domain's QEMU: one "starting up" line per start in its log. */
export function startCount(domain: string): number {
    const log = `/var/log/libvirt/qemu/${domain}.log`;
    return existsSync(log) ? (readFileSync(log, "utf8").match(/starting up/g) ?? []).length : 0;
}

/** What changes when a guest restarts: libvirt's domain id and the QEMU process. */
export interface GuestIdentity {
    id: string;
    pid: number;
}

export function guestIdentity(domain: string): GuestIdentity {
    return { id: domId(domain), pid: qemuPid(domain) };
}

/** rig/reset-guest.sh for several guests at once (each takes ~7 s). */
export async function resetGuests(names: string[]): Promise<void> {
    await Promise.all(names.map(backgroundResetsDone));
    await Promise.all(names.map((name) => new Promise<void>((resolve, reject) => {
        const child = spawn("bash", [join(REPO_ROOT, "rig", "reset-guest.sh"), name], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (d: Buffer) => { output += d.toString(); });
        child.stderr.on("data", (d: Buffer) => { output += d.toString(); });
        child.on("error", reject);
        child.on("close", (code) => code === 0 ? resolve()
            : reject(new Error(`rig/reset-guest.sh ${name} failed (exit ${code}):\n${output.trim().split("\n").slice(-15).join("\n")}`)));
    })));
}
