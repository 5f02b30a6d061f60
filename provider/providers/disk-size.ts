/**
 * AttachedDisk `size`: what to run so the disk has that capacity. A missing image is created, a
 * smaller one grown (live with blockresize, shut off with qemu-img resize), a block device must
 * already be that big, and nothing is ever shrunk. Decided from probes read with the domain.
 */
import { dirname } from "node:path";
import type { AttachedDiskInputs, AttachedDiskOutputs } from "../contract";
import type { Round } from "../batch/round";
import { InputError, VirshError } from "../errors";
import { blockDeviceBytes, checkImageDirectory, domblkCapacity, imageVirtualSize, SourceKind } from "../host-checks";
import { formatBytes, parseDiskSizeBytes } from "../units";
import type { Probe } from "../virsh/probes";
import type { StepOutcome } from "../virsh/step-script";
import { SUDO_REFUSED } from "../virsh/stderr-hints";
import type { Command, Virsh } from "../virsh/virsh";

export function sizeBytesOf(inputs: AttachedDiskInputs): number | undefined {
    return inputs.size === undefined ? undefined : parseDiskSizeBytes(inputs.size, "size");
}

/** The probes a create with `size` reads along with the domain (only the one that fits is used). */
export function createSizeProbes(inputs: AttachedDiskInputs): { directory: Probe; image: Probe; block: Probe } {
    const source = inputs.source;
    return {
        directory: { kind: "path", path: dirname(source) },
        image: { kind: "imageInfo", path: source, format: inputs.format ?? "raw" },
        block: { kind: "blockSize", path: source },
    };
}

export function capacityProbe(target: string): Probe {
    return { kind: "domblkinfo", device: target };
}

function refuseShrink(virsh: Virsh, device: string, currentBytes: number, wantBytes: number): never {
    throw new InputError(`size ${formatBytes(wantBytes)} is smaller than the disk's ${formatBytes(currentBytes)}: a shrink loses data, and nothing was changed`,
        virsh.context(device), `keep size at ${formatBytes(currentBytes)} or more; to get a smaller disk, attach a new one and copy the data`);
}

function refuseSmallDevice(virsh: Virsh, device: string, path: string, deviceBytes: number, wantBytes: number): never {
    throw new InputError(`size ${formatBytes(wantBytes)} is more than the block device ${path} holds (${formatBytes(deviceBytes)}); nothing was changed`,
        virsh.context(device), `grow the device itself first (e.g. lvextend -L ${formatBytes(wantBytes)} ${path}), then run pulumi up again: size then tells QEMU the new size live`);
}

export interface CreateSizePlan {
    /** Host commands to run before the attach. */
    steps: Command[];
    imageCreated: boolean;
}

/**
 * A new image, never over an existing file: the guard (nothing at the path, not even a dangling
 * link) runs in the same exec right before qemu-img create, and a failed step stops the rest.
 */
export function createImageSteps(path: string, format: string, bytes: number): Command[] {
    return [
        noFileAtStep(path),
        { host: true, args: ["qemu-img", "create", "-q", "-f", format, "--", path, String(bytes)] },
    ];
}

/** Succeeds only when nothing is at the path, not even a dangling link: the guard before a step that creates a file there. */
export function noFileAtStep(path: string): Command {
    return { host: true, args: ["test", "!", "-e", path, "-a", "!", "-h", path] };
}

/** The error when the guard of createImageSteps (the plan's first step) refused; undefined when it did not. */
export function refusedByGuard(virsh: Virsh, plan: CreateSizePlan, steps: readonly StepOutcome[], path: string): InputError | undefined {
    const guard = steps[0];
    if (!plan.imageCreated || !guard?.ran || guard.exitCode !== 1 || SUDO_REFUSED.test(guard.stderr)) return undefined;
    return new InputError(`source ${path} exists on the host now (a file, or a symbolic link whose target is missing), although the read a moment before found nothing there: ` +
        "qemu-img create was not run (it would have written over it) and nothing was attached", virsh.context("source"),
        "run pulumi up again: an existing image is then attached as it is (and grown to size), never recreated; a dangling link: remove it or fix source");
}

/** Before the attach: create a missing image, grow a smaller one; refuse a shrink or a too-small block device. */
export function planCreateSize(virsh: Virsh, read: Round, inputs: AttachedDiskInputs, kind: SourceKind | "missing", wantBytes: number): CreateSizePlan {
    const probes = createSizeProbes(inputs);
    const format = inputs.format ?? "raw";
    if (kind === "missing") {
        checkImageDirectory(virsh, read.probe(probes.directory), dirname(inputs.source), inputs.source);
        return { steps: createImageSteps(inputs.source, format, wantBytes), imageCreated: true };
    }
    if (kind === "block") {
        const bytes = blockDeviceBytes(virsh, read.probe(probes.block), inputs.source);
        if (bytes < wantBytes) refuseSmallDevice(virsh, "source", inputs.source, bytes, wantBytes);
        return { steps: [], imageCreated: false };
    }
    const bytes = imageVirtualSize(virsh, read.probe(probes.image), inputs.source);
    if (bytes > wantBytes) refuseShrink(virsh, "source", bytes, wantBytes);
    return { steps: bytes < wantBytes ? [resizeImageStep(inputs.source, format, wantBytes)] : [], imageCreated: false };
}

/** Grows an image file the domain does not have open; the format is named, never probed from the file's bytes. */
function resizeImageStep(path: string, format: string, bytes: number): Command {
    return { host: true, args: ["qemu-img", "resize", "-q", "-f", format, "--", path, String(bytes)] };
}

/** The probes a size change reads along with the domain. */
export function resizeProbes(olds: AttachedDiskOutputs): Probe[] {
    return [capacityProbe(olds.target), ...(olds.sourceType === "block" ? [{ kind: "blockSize", path: olds.source } as Probe] : [])];
}

/** A size change of an attached disk: the commands that grow it (none when it is that big already). */
export function planResize(virsh: Virsh, read: Round, olds: AttachedDiskOutputs, running: boolean, wantBytes: number): Command[] {
    const device = `disk ${olds.target}`;
    const current = domblkCapacity(read.probe(capacityProbe(olds.target)));
    if (current === null) {
        throw new VirshError(`cannot read the capacity of ${device} (virsh domblkinfo)`, virsh.context(device), "run pulumi refresh, then pulumi up again", 1);
    }
    if (wantBytes < current) refuseShrink(virsh, device, current, wantBytes);
    if (olds.sourceType === "block") {
        const bytes = blockDeviceBytes(virsh, read.probe({ kind: "blockSize", path: olds.source }), olds.source);
        if (bytes < wantBytes) refuseSmallDevice(virsh, device, olds.source, bytes, wantBytes);
        // QEMU takes a block device's new size only when told, and only the device's whole size.
        return running && bytes > current ? [{ args: ["blockresize", `--domain=${virsh.domain}`, `--path=${olds.target}`, `--size=${bytes}B`] }] : [];
    }
    if (wantBytes === current) return [];
    return running
        ? [{ args: ["blockresize", `--domain=${virsh.domain}`, `--path=${olds.target}`, `--size=${wantBytes}B`] }]
        : [resizeImageStep(olds.source, olds.format, wantBytes)];
}

/** After the change: QEMU's capacity must be the size (a block device: at least it). */
export function verifyCapacity(virsh: Virsh, device: string, capacity: number | null, wantBytes: number, block: boolean): void {
    if (capacity === null || capacity < wantBytes || (!block && capacity !== wantBytes)) {
        throw new VirshError(`the change ran but ${device} has a capacity of ${capacity === null ? "(unreadable)" : formatBytes(capacity)}, not ${formatBytes(wantBytes)}`,
            virsh.context(device), "run pulumi refresh to see the real size, then pulumi up again", 1);
    }
}

/** check: a smaller size than the last one is refused before anything runs (olds are the last inputs). */
export function shrinkProblem(olds: Partial<AttachedDiskInputs> | undefined, news: AttachedDiskInputs): string | undefined {
    if (olds?.size === undefined || news.size === undefined) return undefined;
    try {
        const [before, after] = [parseDiskSizeBytes(olds.size, "size"), parseDiskSizeBytes(news.size, "size")];
        return after < before
            ? `${formatBytes(before)} → ${formatBytes(after)} would shrink the disk, and a shrink loses data; keep size at ${formatBytes(before)} or more (a smaller disk: attach a new one)`
            : undefined;
    } catch {
        return undefined;
    }
}
