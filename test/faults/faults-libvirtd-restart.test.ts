/**
 * libvirtd restarted during a run. DISRUPTIVE: the rig's libvirtd serves every suite on this
 * machine (mocha runs the suites one after the other; PLL_SKIP_LONG=1 skips this one) and it keeps
 * libvirtd down a few seconds.
 *
 * libvirtd is stopped (SIGTERM to the pid rig/up.sh recorded in $RIG_DIR/libvirtd.pid) and
 * started again exactly as the rig starts it: by running rig/up.sh, which finds libvirt not
 * answering and starts libvirtd under its child-subreaper. Guests keep running (QEMU outlives
 * libvirtd; libvirtd reconnects to it). The `virsh` double on our own sshd (2223) delays the
 * chosen subcommand by 2 s so the restart lands while that operation is under way: virsh then
 * meets "failed to connect to the hypervisor", which the provider retries with backoff. The
 * operation completes (or fails clearly) and the XML, refresh (read) and diff agree. Guest pll-fault3.
 */
import assert from "node:assert/strict";
import { readFileSync } from "fs";
import { join } from "path";
import type { AttachedDiskInputs, AttachedDiskOutputs, AttachedInterfaceInputs, AttachedInterfaceOutputs } from "../../provider/contract";
import { providers } from "../../provider/index";
import { configXml, createImage, diskCount, interfacesIn, liveXml, removeFiles, resetGuest, resetGuestInBackground, RigEnv, rigRestore, rigUp, sleep, typed, virshLocalResult, waitFor } from "../rig/rig-env";
import { convergedViaProviders, FaultSshd, longSuitesSkipped } from "./fault-env";

const GUEST = "pll-fault3";

/** SIGTERM to the rig's libvirtd (its own pid file); returns when it is gone. */
async function stopRigLibvirtd(env: RigEnv): Promise<number> {
    const pid = Number(readFileSync(join(env.PLL_RIG_DIR, "libvirtd.pid"), "utf8").trim());
    assert.equal(readFileSync(`/proc/${pid}/comm`, "utf8").trim(), "libvirtd", `pid ${pid} is the rig's libvirtd`);
    process.kill(pid, "SIGTERM");
    await waitFor(`libvirtd ${pid} to exit`, () => {
        try {
            return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].startsWith("Z");
        } catch {
            return true;
        }
    }, { timeoutMs: 30_000, intervalMs: 100 });
    return pid;
}

describe("faults: libvirtd restarted during an operation (pll-fault3; disruptive)", function () {
    this.timeout(300_000);
    const disks = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    const nics = typed<AttachedInterfaceInputs, AttachedInterfaceOutputs>(providers.attachedInterface);
    let env: RigEnv;
    let sshd: FaultSshd;
    const images: string[] = [];
    /** Stops libvirtd once the double logs `subcommand start`, then brings it back with rig/up.sh. */
    async function restartDuring(subcommand: string): Promise<void> {
        await waitFor(`${subcommand} to start`, () => sshd.calls().includes(`${subcommand} start`), { timeoutMs: 60_000 });
        const old = await stopRigLibvirtd(env);
        assert.notEqual(virshLocalResult(["list"]).status, 0, "libvirtd is down");
        await sleep(2000);
        rigRestore();
        const now = Number(readFileSync(join(env.PLL_RIG_DIR, "libvirtd.pid"), "utf8").trim());
        assert.notEqual(now, old, "a new libvirtd");
    }

    before(function () {
        if (longSuitesSkipped()) this.skip();
        env = rigUp();
        sshd = new FaultSshd(env);
        sshd.start();
        resetGuest(GUEST);
    });

    afterEach(() => sshd?.clearRules());

    after(function () {
        if (longSuitesSkipped()) return;
        rigRestore();
        sshd.stop();
        resetGuestInBackground(GUEST);
        removeFiles(images);
    });

    it("restart while an attach is under way: virsh meets a down libvirtd, the provider retries, the attach completes once; refresh/diff agree", async () => {
        const connection = sshd.connection();
        const source = createImage(env, "libvirtd-attach");
        images.push(source);
        const inputs: AttachedDiskInputs = { connection, domain: GUEST, source };
        sshd.clearCalls();
        sshd.rule("attach-device", "before", "2");
        const creating = disks.create(inputs);
        await restartDuring("attach-device");
        sshd.clearRules();
        const { id, outs } = await creating;
        const ran = sshd.calls().filter((c) => c.startsWith("attach-device ran"));
        console.log(`      double saw: ${ran.join(", ")}; attach-device calls ${sshd.calls().filter((c) => c === "attach-device start").length}`);
        assert.deepEqual(diskCount(GUEST, source), { live: 1, config: 1 }, "attached once");
        assert.equal(GUEST, outs.domain);
        await convergedViaProviders(disks, id, outs, inputs);

        sshd.clearCalls();
        sshd.rule("detach-disk", "before", "2");
        const deleting = disks.delete(id, outs);
        await restartDuring("detach-disk");
        sshd.clearRules();
        await deleting;
        assert.deepEqual(diskCount(GUEST, source), { live: 0, config: 0 }, "detached from both");
        assert.equal((await disks.read(id, outs)).id, undefined, "refresh drops it");
    });

    it("libvirtd dies during an attach-device that landed: the provider reads back once libvirtd is back and never attaches a second NIC", async () => {
        const connection = sshd.connection();
        const mac = "52:54:00:7e:14:07";
        const inputs: AttachedInterfaceInputs = { connection, domain: GUEST, type: "bridge", source: env.PLL_BRIDGE, mac };
        sshd.clearCalls();
        // The attach runs for real; the answer virsh would have given is lost with libvirtd (virsh 9.0's words for a daemon that died mid-call).
        sshd.rule("attach-device", "lost", "4 error: Failed to attach device from /dev/stdin\\nerror: End of file while reading data: Input/output error");
        const creating = nics.create(inputs);
        await waitFor("the attach to run", () => sshd.calls().includes("attach-device ran 0"), { timeoutMs: 60_000 });
        await stopRigLibvirtd(env);
        // libvirtd is still down when the lost answer arrives, so the provider's read back meets "failed to connect" first.
        await waitFor("the lost answer", () => sshd.calls().includes("attach-device answered"), { timeoutMs: 30_000 });
        await sleep(1500);
        rigRestore();
        sshd.clearRules();
        const { id, outs } = await creating;
        const count = (xml: string) => interfacesIn(xml).filter((i) => i.mac === mac).length;
        assert.deepEqual({ live: count(liveXml(GUEST)), config: count(configXml(GUEST)) }, { live: 1, config: 1 }, "one NIC, in both halves");
        assert.equal(sshd.calls().filter((c) => c === "attach-device start").length, 1, "attach-device ran once: no rerun without a read back");
        assert.equal(outs.mac, mac);
        await convergedViaProviders(nics, id, outs, inputs);
        await nics.delete(id, outs);
        assert.equal(interfacesIn(configXml(GUEST)).filter((i) => i.mac === mac).length, 0, "detached");
    });
});
