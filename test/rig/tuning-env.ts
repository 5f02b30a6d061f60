/**
 * Where a domain's tuning really takes effect, read on the test's own channel (never the
 * provider's code): the host threads' CPU affinity (`taskset`), and the cgroup files of the
 * guest's QEMU under /sys/fs/cgroup (cgroup v1, as on the rig), found from /proc/PID/cgroup.
 */
import { execFileSync } from "child_process";
import { existsSync, readFileSync } from "fs";
import { dirname, join } from "path";
import { qemuPid } from "../engine/guest-facts";
import { virshLocal } from "./rig-env";

/** The host thread of each vCPU, by index (`info cpus` of QEMU's monitor: "CPU #0: thread_id=1234"). */
export function vcpuThreads(domain: string): number[] {
    const out = virshLocal(["qemu-monitor-command", "--hmp", domain, "info cpus"]);
    return [...out.matchAll(/CPU #(\d+):.*thread_id=(\d+)/g)].sort((a, b) => Number(a[1]) - Number(b[1])).map((m) => Number(m[2]));
}

/** A host thread's CPU affinity as `taskset -pc` prints it ("0,1" and "0-1" both come out as "0-1"). */
export function affinity(tid: number): string {
    const out = execFileSync("taskset", ["-pc", String(tid)], { encoding: "utf8" });
    const list = /current affinity list:\s*(\S+)/.exec(out)?.[1];
    if (!list) throw new Error(`taskset -pc ${tid} said: ${out}`);
    const cpus = list.split(",").flatMap((part) => {
        const [from, to = from] = part.split("-").map(Number);
        return Array.from({ length: to - from + 1 }, (_, i) => from + i);
    });
    return cpus.length > 1 && cpus[cpus.length - 1] - cpus[0] === cpus.length - 1 ? `${cpus[0]}-${cpus[cpus.length - 1]}` : cpus.join(",");
}

/** The cgroup folder of a QEMU thread (the main thread: the emulator's) for one v1 controller. */
export function cgroupDir(domain: string, controller: "cpu" | "memory" | "blkio", tid?: number): string {
    const pid = qemuPid(domain);
    const file = tid === undefined ? `/proc/${pid}/cgroup` : `/proc/${pid}/task/${tid}/cgroup`;
    const line = readFileSync(file, "utf8").split("\n").find((l) => l.split(":")[1]?.split(",").includes(controller));
    if (!line) throw new Error(`${file} names no ${controller} cgroup`);
    // The rig mounts each v1 controller on its own (RIG.md): /sys/fs/cgroup/cpu, …/memory, …/blkio.
    return join("/sys/fs/cgroup", controller, line.split(":").slice(2).join(":"));
}

/**
 * The domain's own cgroup: libvirt puts the emulator threads and each vCPU in children of it
 * ("emulator", "vcpu0"), and the memory controller's is the domain's itself.
 */
export function domainCgroup(domain: string, controller: "cpu" | "memory" | "blkio"): string {
    const dir = cgroupDir(domain, controller);
    return dir.endsWith("/emulator") ? dirname(dir) : dir;
}

/** One cgroup file's value, trimmed. */
export function cgroupValue(dir: string, file: string): string {
    return readFileSync(join(dir, file), "utf8").trim();
}

/** The I/O weight file the blkio controller offers (CFQ's blkio.weight, or BFQ's). */
export function blkioWeightFile(dir: string): string {
    const file = ["blkio.weight", "blkio.bfq.weight"].find((f) => existsSync(join(dir, f)));
    if (!file) throw new Error(`${dir} has no blkio.weight or blkio.bfq.weight`);
    return file;
}
