/**
 * Issue 16 from the guest's own view (the Debian guest with its agent, pll-deb1; reset before and
 * after): a disk is attached, and the guest writes a known pattern to it, 1 MiB at a time with
 * O_DIRECT, over and over, while the provider moves the disk live to a qcow2 (copyBandwidth keeps
 * the copy going for seconds). Writes land before, during and after the copy; once the writer
 * stopped and the disk is detached, the new image holds the pattern wherever the guest wrote and
 * the old data elsewhere. The guest saw no unplug: the same /dev name by its serial, and its udev
 * monitor logged no remove event until the final detach (which it logs, so it would have seen one).
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { agentCall, DEB_AGENT, guestExec, waitForAgent } from "./debian-env";
import { fillRandom, holdsPattern, MiB, on, placeOf } from "./disk-move-env";
import { createImage, missingPath, removeFiles, resetGuest, resetGuestInBackground, RigEnv, rigConnection, rigUp, typedProviders, waitFor } from "./rig-env";

const SERIAL = "PLLMVGUEST";
const DISK_MIB = 64;
/** The writer cycles over the first 48 MiB; the rest keeps the data the disk had. */
const WRITTEN_MIB = 48;
const BYTE = 0xa5;
const UDEV_LOG = "/run/pll-mv-udev.log";
const WRITER_LOG = "/run/pll-mv-writer.log";
const STOP = "/run/pll-mv-stop";

/** Starts a shell command in the guest through its agent, without waiting; its pid there. */
function startInGuest(script: string): number {
    return (agentCall(DEB_AGENT, { execute: "guest-exec", arguments: { path: "/bin/sh", arg: ["-c", script] } }) as { pid: number }).pid;
}

function exitedInGuest(pid: number): { exited: boolean; exitcode?: number } {
    return agentCall(DEB_AGENT, { execute: "guest-exec-status", arguments: { pid } }) as { exited: boolean; exitcode?: number };
}

/** The MiB the writer has written so far (one line each). */
async function chunksWritten(): Promise<number> {
    return (await guestExec(DEB_AGENT, "/bin/cat", [WRITER_LOG])).split("\n").filter(Boolean).length;
}

describe("rig: a live move seen from inside a Debian guest writing to the disk (pll-deb1)", function () {
    this.timeout(600_000);
    const { disks } = typedProviders();
    let env: RigEnv;
    const files: string[] = [];

    before(async function () {
        env = rigUp();
        resetGuest(DEB_AGENT);
        await waitForAgent(DEB_AGENT);
    });

    after(function () {
        resetGuestInBackground(DEB_AGENT);
        removeFiles(files);
    });

    it("the guest writes a pattern while the copy runs: the new image holds every write, the old data elsewhere; same /dev name, no udev remove", async () => {
        const old = createImage(env, "mv-guest", "raw", `${DISK_MIB}M`);
        const dest = missingPath(env, "mv-guest-dest").replace(/\.img$/, ".qcow2");
        const flat = `${dest}.raw`;
        files.push(old, dest, flat);
        fillRandom(old, DISK_MIB);
        const inputs = { connection: rigConnection(env), domain: DEB_AGENT, source: old, serial: SERIAL, cache: "none" as const };
        const created = await disks.create(inputs);
        const target = created.outs.target;
        const byId = `/dev/disk/by-id/virtio-${SERIAL}`;
        const name = await waitFor(`${byId} in the guest`, async () => (await guestExec(DEB_AGENT, "/bin/readlink", ["-e", byId])).trim() || undefined, { timeoutMs: 60_000, intervalMs: 500 });
        assert.match(name, /^\/dev\/vd[a-z]+$/);

        startInGuest(`exec timeout 600 stdbuf -oL udevadm monitor --kernel --subsystem-match=block > ${UDEV_LOG} 2>&1`);
        await waitFor("the guest's udev monitor to listen", async () => /monitor will print/.test(await guestExec(DEB_AGENT, "/bin/cat", [UDEV_LOG])), { intervalMs: 500 });
        const writer = startInGuest(`head -c ${MiB} /dev/zero | tr '\\000' '\\${BYTE.toString(8)}' > /run/pll-mv-pattern || exit 2; i=0; rm -f ${STOP}; ` +
            `while [ ! -e ${STOP} ]; do dd if=/run/pll-mv-pattern of=${name} bs=1M count=1 seek=$i oflag=direct conv=notrunc status=none || exit 1; ` +
            `echo $i >> ${WRITER_LOG}; i=$(( (i + 1) % ${WRITTEN_MIB} )); sleep 0.1; done`);
        await waitFor("the guest's first write", async () => (await chunksWritten()) > 0, { intervalMs: 200 });

        const before = await chunksWritten();
        const started = Date.now();
        const moved = await disks.apply(created.id, created.outs, { ...inputs, source: dest, format: "qcow2", copyBandwidth: 8 });
        const copyMs = Date.now() - started;
        const atPivot = await chunksWritten();
        assert.equal(moved.replaced, false);
        assert.deepEqual(placeOf(DEB_AGENT, target), on(dest, "qcow2"));
        assert.ok(atPivot > before, `the guest wrote while the copy ran (${before} → ${atPivot} MiB in ${copyMs} ms)`);
        await waitFor("writes after the pivot", async () => (await chunksWritten()) >= atPivot + 3, { intervalMs: 200 });
        assert.equal(exitedInGuest(writer).exited, false, "the writer still runs (no write failed)");

        await guestExec(DEB_AGENT, "/bin/touch", [STOP]);
        const status = await waitFor("the writer to stop", () => { const s = exitedInGuest(writer); return s.exited ? s : undefined; }, { intervalMs: 200 });
        assert.equal(status.exitcode, 0, "every write succeeded");
        const total = await chunksWritten();
        await guestExec(DEB_AGENT, "/bin/sync", []);
        assert.equal((await guestExec(DEB_AGENT, "/bin/readlink", ["-e", byId])).trim(), name, "the same /dev name after the move");
        const events = await guestExec(DEB_AGENT, "/bin/cat", [UDEV_LOG]);
        assert.doesNotMatch(events, /\bremove\b/, `no udev remove event during the move: ${events}`);
        console.log(`      ${before} MiB written before the copy, ${atPivot - before} during it (${copyMs} ms, copyBandwidth 8), ${total - atPivot} after the pivot`);

        await disks.delete(moved.id, moved.outs);
        await waitFor("the detach in the guest's udev log (the monitor sees an unplug)", async () =>
            new RegExp(`remove\\s+\\S*/block/${name.slice(5)}\\b`).test(await guestExec(DEB_AGENT, "/bin/cat", [UDEV_LOG])), { timeoutMs: 60_000, intervalMs: 500 });
        const written = Math.min(total, WRITTEN_MIB);
        assert.ok(holdsPattern(dest, "qcow2", { byte: `0x${BYTE.toString(16)}`, offset: 0, length: written * MiB }), `the new image holds the pattern over the ${written} MiB the guest wrote`);
        execFileSync("qemu-img", ["convert", "-f", "qcow2", "-O", "raw", dest, flat]);
        const rest = spawnSync("cmp", ["-n", String((DISK_MIB - written) * MiB), "-i", `${written * MiB}:${written * MiB}`, old, flat], { encoding: "utf8" });
        assert.equal(rest.status, 0, `the rest of the disk is the data it had: ${rest.stdout}${rest.stderr}`);
    });
});
