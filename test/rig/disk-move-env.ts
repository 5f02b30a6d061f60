/**
 * What the disk-move suites share: a known pattern written into an image and read back without
 * taking its lock (qemu-io -r -U), where both halves of a domain have a disk, and a suite's own
 * throwaway domain with its files.
 */
import { execFileSync, spawnSync } from "node:child_process";
import type { AttachedDiskInputs, AttachedDiskOutputs } from "../../provider/contract";
import { providers } from "../../provider/index";
import { ThrowawayDomain } from "./throwaway-domain";
import { configXml, createImage, diskByTarget, GUEST2, liveXml, missingPath, removeFiles, RigEnv, rigConnection, rigUp, typed } from "./rig-env";

export const MiB = 1024 * 1024;

/** 0x5c over 4 MiB from 1 MiB: written into a raw image before it is attached. */
export const PATTERN = { byte: "0x5c", offset: MiB, length: 4 * MiB };

export function writePattern(path: string, byte = PATTERN.byte): void {
    execFileSync("qemu-io", ["-f", "raw", "-c", `write -P ${byte} ${PATTERN.offset} ${PATTERN.length}`, path], { stdio: "ignore" });
}

/** qemu-io reads `length` bytes of `byte` at `offset` back from the image, as `format`, without taking its lock. */
export function holdsPattern(path: string, format: "raw" | "qcow2", { byte, offset, length } = PATTERN): boolean {
    const read = spawnSync("qemu-io", ["-r", "-U", "-f", format, "-c", `read -P ${byte} ${offset} ${length}`, path], { encoding: "utf8" });
    return read.status === 0 && !/Pattern verification failed/.test(read.stdout + read.stderr);
}

export function fillRandom(path: string, mib: number): void {
    execFileSync("dd", ["if=/dev/urandom", `of=${path}`, "bs=1M", `count=${mib}`, "conv=notrunc", "status=none"]);
}

export interface DiskPlace {
    live?: string;
    config?: string;
    liveFormat?: string;
    configFormat?: string;
}

/** Where both halves of the domain have the disk: source and format in the live XML and in the config. */
export function placeOf(domain: string, target: string): DiskPlace {
    const [live, config] = [diskByTarget(liveXml(domain), target), diskByTarget(configXml(domain), target)];
    return { live: live?.source, config: config?.source, liveFormat: live?.driverType, configFormat: config?.driverType };
}

/** Both halves on `source`, in `format`. */
export function on(source: string, format: "raw" | "qcow2" = "raw"): DiskPlace {
    return { live: source, config: source, liveFormat: format, configFormat: format };
}

/**
 * A disk-move suite's own throwaway domain (a copy of pll-guest2 without an OS) and the files it
 * made: `setUp` in `before`, `tearDown` in `after`.
 */
export class MoveFixture {
    readonly provider = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    readonly files: string[] = [];
    private readonly loops: string[] = [];
    private rig?: RigEnv;

    constructor(readonly domain: string) {}

    get env(): RigEnv {
        if (!this.rig) throw new Error("MoveFixture.setUp() first");
        return this.rig;
    }

    setUp(): void {
        this.rig = rigUp();
        new ThrowawayDomain(this.env, this.domain, GUEST2).create();
    }

    /** The domain first (it holds the disks), then the loop devices, then the files under them. */
    tearDown(): void {
        if (this.rig) new ThrowawayDomain(this.rig, this.domain, GUEST2).remove();
        for (const loop of this.loops) spawnSync("losetup", ["-d", loop]);
        removeFiles(this.files);
    }

    /** The suite's `before` and `after`: its domain defined and started, then removed with its files. */
    hooks(): this {
        before(() => this.setUp());
        after(() => this.tearDown());
        return this;
    }

    /** The disk's inputs on this domain. */
    disk(source: string, fields: Partial<AttachedDiskInputs> = {}): AttachedDiskInputs {
        return { connection: rigConnection(this.env), domain: this.domain, source, ...fields };
    }

    /** A raw image of `mib` MiB, removed in tearDown. */
    image(label: string, mib: number): string {
        const path = createImage(this.env, `move-${label}`, "raw", `${mib}M`);
        this.files.push(path);
        return path;
    }

    /** A path where nothing is yet (a move's destination), removed in tearDown. */
    nowhere(label: string, ext = "img"): string {
        const path = missingPath(this.env, `move-${label}`).replace(/\.img$/, `.${ext}`);
        this.files.push(path);
        return path;
    }

    /** A loop block device on a file of exactly `mib` MiB, detached in tearDown. */
    loop(label: string, mib: number): string {
        const backing = this.image(`${label}-loop`, mib);
        const device = execFileSync("losetup", ["-f", "--show", backing], { encoding: "utf8" }).trim();
        this.loops.push(device);
        return device;
    }

    place(target: string): DiskPlace {
        return placeOf(this.domain, target);
    }
}

/** What `action` wrote to the engine's log (console.log and console.error, where the provider's info and warn go), with its result. */
export async function withLog<T>(action: () => Promise<T>): Promise<{ result: T; said: string[] }> {
    const said: string[] = [];
    const [log, err] = [console.log, console.error];
    console.log = console.error = (...args: unknown[]) => { said.push(args.map(String).join(" ")); };
    try {
        return { result: await action(), said };
    } finally {
        [console.log, console.error] = [log, err];
    }
}
