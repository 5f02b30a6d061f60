/**
 * Facts about a rig guest that the engine tests read on their own channel (files libvirt writes
 * on this machine, and `virsh` through rig-env.ts): whether the guest restarted, and resets of
 * several guests at once.
 */
import { existsSync, readFileSync } from "fs";
import { domId, resetGuestAsync } from "../rig/rig-env";

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
    await Promise.all(names.map(resetGuestAsync));
}
