/**
 * A device at a resource's target that is not the resource's own: its own was detached by hand and
 * another put there, or a failed change left another half behind. It is never changed or detached:
 * found half by half, an update or a move is refused before any command, a delete leaves it and
 * says so. The XML cannot tell which of the two it is, so the fix names both ways out.
 */
import { warn } from "../engine-log";
import { InputError } from "../errors";
import type { DomainSnapshot } from "../virsh/domain-snapshot";
import type { Virsh } from "../virsh/virsh";
import { diskSourcePath, DiskValues } from "../xml/disk-xml";
import { diskAt, kindOf } from "./device-lookup";

/** What a resource calls its own at its target, and how messages name it. */
export interface Ownership {
    device: "disk" | "cdrom";
    isOurs: (disk: DiskValues) => boolean;
    ours: string;
}

/** A CD-ROM drive: any at the target (the media in it is what the resource manages). */
export const CDROM_DRIVE: Ownership = { device: "cdrom", isOurs: (disk) => kindOf(disk) === "cdrom", ours: "a CD-ROM drive" };

/** A data disk on this source (the state's): a CD-ROM drive, or a disk on another file, is not it. */
export function diskOn(source: string): Ownership {
    return { device: "disk", isOurs: (disk) => kindOf(disk) === "disk" && diskSourcePath(disk) === source, ours: `this resource's disk ${source}` };
}

interface Stranger {
    halves: Array<"live" | "config">;
    said: string;
}

const HALF_NAMES = { live: "live XML", config: "persistent config" } as const;

function strangerAt(virsh: Virsh, snapshot: DomainSnapshot, target: string, owner: Ownership): Stranger | undefined {
    const found = (["live", "config"] as const).flatMap((where) => {
        const disk = diskAt(snapshot, where, target);
        return disk && !owner.isOurs(disk) ? [{ where, disk }] : [];
    });
    if (found.length === 0) return undefined;
    const { disk } = found[0];
    const source = diskSourcePath(disk);
    return {
        halves: found.map((f) => f.where),
        said: `target ${target} of domain '${virsh.domain}' holds a ${kindOf(disk)}${source ? ` (${source})` : ""} in the ` +
            `${found.map((f) => HALF_NAMES[f.where]).join(" and the ")}, not ${owner.ours}: a device put there by hand, or a half a failed change left behind`,
    };
}

function removal(virsh: Virsh, target: string, stranger: Stranger): string {
    return `virsh detach-disk ${virsh.domain} ${target} ${stranger.halves.map((where) => `--${where}`).join(" ")}`;
}

/** Throws before any command when another device sits at the target: changing it would change that device. */
export function refuseStranger(virsh: Virsh, snapshot: DomainSnapshot, target: string, owner: Ownership): void {
    const stranger = strangerAt(virsh, snapshot, target, owner);
    if (!stranger) return;
    // A disk moved by hand, or by a move that failed half-way, is this resource's disk on a new file:
    // refresh takes it, and unplugging it (the detach) would take the guest's current data away.
    const moved = owner.device === "disk" ? "if this resource's disk was moved there (by hand, or by a move that failed half-way), run pulumi refresh: the state then names it. Otherwise " : "";
    throw new InputError(stranger.said, virsh.context(`${owner.device} ${target}`),
        `${moved}check virsh domblklist ${virsh.domain} --details: if nothing needs that device, unplug it (${removal(virsh, target, stranger)}), ` +
        "then run pulumi refresh and pulumi up again; if it is needed, leave it and give this resource another target");
}

/** Says in the engine log that another device at the target is left as it is; true when there is one. */
export async function warnOfStranger(virsh: Virsh, snapshot: DomainSnapshot, target: string, owner: Ownership, instead: string): Promise<boolean> {
    const stranger = strangerAt(virsh, snapshot, target, owner);
    if (stranger) {
        await warn(`host ${virsh.host.label}: ${stranger.said}. It is left as it is (${removal(virsh, target, stranger)} removes it if nothing needs it); ${instead}`);
    }
    return stranger !== undefined;
}
