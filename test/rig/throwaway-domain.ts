/**
 * A domain of a test's own: a copy of a rig guest's definition under a new name (no
 * <uuid>, its own console file, no kernel unless asked: a domain without an OS runs fine and
 * accepts hot-plugs), defined and, when asked, started by the test, removed in its `after`.
 */
import { readFileSync, rmSync, writeFileSync } from "fs";
import { join } from "path";
import { RigEnv, virshLocal, virshLocalResult } from "./rig-env";

export class ThrowawayDomain {
    private readonly console: string;

    constructor(private readonly env: RigEnv, readonly name: string, private readonly copyOf: string) {
        this.console = join(env.PLL_RIG_DIR, `console-${name}.log`);
    }

    /** Defines it (replacing an earlier one of the same name), and starts it unless `start` is false. */
    create(start = true): void {
        this.remove();
        // The rig's own definition (what rig/reset-guest.sh defines), never the guest's config now: a
        // suite in another lane may have a disk attached to it at this moment, which the copy would share.
        const xml = readFileSync(join(this.env.PLL_RIG_DIR, `${this.copyOf}.xml`), "utf8")
            .replace(/<name>[^<]*<\/name>/, `<name>${this.name}</name>`)
            .replace(/\s*<uuid>[^<]*<\/uuid>/, "")
            .replace(/\s*<(kernel|initrd|cmdline)>[^<]*<\/\1>/g, "")
            .replaceAll(`console-${this.copyOf}.log`, `console-${this.name}.log`);
        const file = join(this.env.PLL_RIG_DIR, `${this.name}.define.xml`);
        writeFileSync(file, xml);
        virshLocal(["define", file]);
        rmSync(file, { force: true });
        if (start) virshLocal(["start", this.name]);
    }

    /** `virsh destroy` and `virsh undefine`, as a user (or another stack) would; nothing else. */
    remove(): void {
        virshLocalResult(["destroy", this.name]);
        virshLocalResult(["undefine", this.name]);
        rmSync(this.console, { force: true });
    }
}
