/** Guest device names per bus, and picking the next free one (vdb after vda, sdaa after sdz). */
import type { DiskBus } from "./contract";

export const TARGET_PREFIX: Readonly<Record<DiskBus, string>> = { virtio: "vd", scsi: "sd", sata: "sd", ide: "hd" };

/** Buses libvirt cannot hot-plug into a running domain. */
export const COLD_PLUG_BUSES: ReadonlySet<DiskBus> = new Set(["sata", "ide"]);

export function targetFitsBus(target: string, bus: DiskBus): boolean {
    return new RegExp(`^${TARGET_PREFIX[bus]}[a-z]+$`).test(target);
}

/** a, b, …, z, aa, ab, … as libvirt numbers disks. */
function suffix(index: number): string {
    let name = "";
    for (let n = index + 1; n > 0; n = Math.floor((n - 1) / 26)) {
        name = String.fromCharCode(97 + ((n - 1) % 26)) + name;
    }
    return name;
}

export function nextFreeTarget(bus: DiskBus, used: ReadonlySet<string>): string {
    for (let i = 0; ; i++) {
        const candidate = TARGET_PREFIX[bus] + suffix(i);
        if (!used.has(candidate)) return candidate;
    }
}
