/**
 * The disk-move workload of the benchmark (issue 16): a disk of `mib` MiB of random data on a
 * throwaway domain (pll-mv-bench, a copy of pll-guest2 without an OS, running) moves live to a new
 * file with providers.attachedDisk's update (blockcopy --transient-job --pivot, the checks and the
 * verify included), beside two offline copies of the same image once the guest left it: `qemu-img
 * convert` and `cp --sparse=always`, each followed by `sync` of the copy (the move's pivot flushes
 * the new image too). The image was just written, so every copy reads it from the page cache.
 */
import { execFileSync } from "child_process";
import type { AttachedDiskInputs, AttachedDiskOutputs, ConnectionInputs } from "../provider/contract";
import type { RigEnv } from "../test/rig/rig-env";

export const MOVE_DOMAIN = "pll-mv-bench";
export const MOVE_STEP = "move live";
export const COPY_STEP = "copy offline";

/** How a step is timed: its mode ("provider", "qemu-img", "cp") and the work. */
export type MeasureStep = (step: string, mode: "provider" | "qemu-img" | "cp", work: () => Promise<unknown>) => Promise<unknown>;

export interface MoveWorkload {
    /** One move and the two offline copies of the image it left. */
    round(): Promise<void>;
    /** The domain and every image gone. */
    close(): void;
}

function timedCopy(args: [string, ...string[]], dest: string): () => Promise<void> {
    return async () => {
        execFileSync(args[0], args.slice(1));
        execFileSync("sync", [dest]);
    };
}

export async function diskMoveWorkload(env: RigEnv, connection: ConnectionInputs, mib: number, measure: MeasureStep): Promise<MoveWorkload> {
    const { createImage, GUEST2, missingPath, removeFiles, typed } = await import("../test/rig/rig-env");
    const { ThrowawayDomain } = await import("../test/rig/throwaway-domain");
    const { fillRandom } = await import("../test/rig/disk-move-env");
    const { providers } = await import("../provider/index");
    const disks = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    const domain = new ThrowawayDomain(env, MOVE_DOMAIN, GUEST2);
    const files: string[] = [];
    const nowhere = (label: string) => {
        const path = missingPath(env, `bench-move-${label}-${files.length}`);
        files.push(path);
        return path;
    };
    domain.create();
    let source = createImage(env, "bench-move", "raw", `${mib}M`);
    files.push(source);
    fillRandom(source, mib);
    const inputs = (path: string): AttachedDiskInputs => ({ connection, domain: MOVE_DOMAIN, source: path });
    let disk = await disks.create(inputs(source));
    return {
        round: async () => {
            const dest = nowhere("live");
            await measure(MOVE_STEP, "provider", async () => {
                disk = { id: disk.id, outs: await disks.update(disk.id, disk.outs, inputs(dest)) };
            });
            if (disk.outs.source !== dest) throw new Error(`the move of ${source} ended on ${disk.outs.source}, not ${dest}`);
            const [converted, copied] = [nowhere("convert"), nowhere("cp")];
            await measure(COPY_STEP, "qemu-img", timedCopy(["qemu-img", "convert", "-f", "raw", "-O", "raw", source, converted], converted));
            await measure(COPY_STEP, "cp", timedCopy(["cp", "--sparse=always", source, copied], copied));
            removeFiles([source, converted, copied]);
            source = dest;
        },
        close: () => {
            domain.remove();
            removeFiles(files);
        },
    };
}
