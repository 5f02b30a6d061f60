/**
 * Domains of the property matrix's own, so it never changes a rig guest's definition: copies of a
 * rig guest's persistent config under another name (a <uuid> of their own, their own console log), with what a
 * real domain carries and a careless `virsh define` loses: a VNC console password and a description
 * of several lines. A running one is started and waited for; a shut-off one is never started.
 */
import { createHash } from "crypto";
import { readFileSync, writeFileSync } from "fs";
import { join } from "path";
import { currentMemoryKiB, liveXml, RigEnv, startAtBaseline, virshLocal, virshLocalResult, waitFor } from "./rig-env";

export const VNC_PASSWORD = "mx-pw-14";
const DESCRIPTION = "pulumi-libvirt-live property matrix\n  line two: kept byte for byte\n  line three";

/** A UUID derived from the name, as rig/up.sh gives each rig guest. */
function uuidOf(name: string): string {
    const hex = createHash("md5").update(`pulumi-libvirt-live-matrix/${name}`).digest("hex");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** The copy's XML: renamed, its own uuid, its own console, the password and the long description. */
function copyXml(env: RigEnv, from: string, name: string): string {
    const console = join(env.PLL_RIG_DIR, `console-${name}.log`);
    // The rig's own definition (what rig/reset-guest.sh defines), not the guest's config now: an earlier suite may have left it otherwise.
    return readFileSync(join(env.PLL_RIG_DIR, `${from}.xml`), "utf8")
        .replace(/<name>[^<]*<\/name>/, `<name>${name}</name>`)
        // A UUID of its own, the same at every define: the baseline saved for it restores only into it.
        .replace(/<uuid>[^<]*<\/uuid>/, `<uuid>${uuidOf(name)}</uuid>`)
        .replace(/<description>[\s\S]*?<\/description>/, `<description>${DESCRIPTION}</description>`)
        .replace(/<source path='[^']*console-[^']*\.log'/g, `<source path='${console}'`)
        .replace("</devices>", `  <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1' passwd='${VNC_PASSWORD}'/>\n  </devices>`);
}

export class MatrixDomain {
    private definition = "";

    constructor(private readonly env: RigEnv, readonly name: string, private readonly from: string, readonly running: boolean) {}

    /** Defined anew from the rig guest's config (and started, when it is a running one). */
    async fresh(): Promise<void> {
        this.remove();
        this.definition = copyXml(this.env, this.from, this.name);
        const file = join(this.env.PLL_IMAGES, `${this.name}.xml`);
        writeFileSync(file, this.definition);
        virshLocal(["define", file]);
        if (!this.running) return;
        // Restored from the baseline saved at its first boot (a TCG boot is ~10 s of CPU, a restore 0.4 s).
        await startAtBaseline(this.name, file);
        // The guest boots at its maximum and its balloon then shrinks it to the configured size: a test starts from there.
        const target = currentMemoryKiB(this.definition);
        await waitFor(`${this.name}'s balloon at ${target} KiB`, () => currentMemoryKiB(liveXml(this.name)) === target, { timeoutMs: 60_000, intervalMs: 250 });
    }

    remove(): void {
        virshLocalResult(["destroy", this.name]);
        virshLocalResult(["undefine", this.name]);
    }
}
