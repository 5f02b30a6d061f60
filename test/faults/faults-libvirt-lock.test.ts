/**
 * libvirt's "Timed out during operation: cannot acquire state change lock", injected for real:
 * a `virsh dump --live` into a FIFO nobody reads holds the domain's job (fault-env
 * HeldJob), so an attach waits libvirt's 30 s and fails with exactly that message. The provider
 * retries with backoff within RETRY_BUDGET_MS (90 s), then gives a clear error. Guest pll-fault1,
 * through our own sshd on 127.0.0.1:2226 (its `virsh` double logs each call, so the attempts can be counted).
 *
 * The last case replays the captured message from the double (no libvirt involved) to check the
 * whole backoff schedule quickly; it says so in its title.
 */
import assert from "node:assert/strict";
import type { AttachedDiskInputs, AttachedDiskOutputs, ConnectionInputs } from "../../provider/contract";
import { providers, VirshError } from "../../provider/index";
import { createImage, diskCount, liveXml, rejectsWith, removeFiles, resetGuest, resetGuestInBackground, RigEnv, rigUp, typed } from "../rig/rig-env";
import { BESIDE_FAULT_PORT, convergedViaProviders, FaultSshd, HeldJob, sleep } from "./fault-env";

const GUEST = "pll-fault1";
const LOCK_MESSAGE = "error: Failed to attach device\nerror: Timed out during operation: cannot acquire state change lock (held by monitor=remoteDispatchDomainCoreDump)";

describe(`faults: libvirt job lock held (${GUEST}, own sshd on 127.0.0.1:${BESIDE_FAULT_PORT})`, function () {
    this.timeout(300_000);
    const disks = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    let env: RigEnv;
    let sshd: FaultSshd;
    let job: HeldJob;
    const images: string[] = [];
    const attachCalls = () => sshd.calls().filter((c) => c === "attach-device start").length;

    /** How each held-job case starts: its own image, the live XML before, the job held, the call log cleared, the clock started. */
    async function underHeldJob(label: string, overrides: Partial<ConnectionInputs> = {}) {
        const connection = sshd.connection(overrides);
        const source = createImage(env, label);
        images.push(source);
        const xmlBefore = liveXml(GUEST);
        await job.hold();
        sshd.clearCalls();
        return { connection, source, xmlBefore, started: Date.now() };
    }

    before(function () {
        this.timeout(300_000);
        env = rigUp();
        sshd = new FaultSshd(env, BESIDE_FAULT_PORT);
        sshd.start();
        resetGuest(GUEST);
        job = new HeldJob(GUEST, sshd.dir);
    });

    afterEach(async function () {
        this.timeout(60_000);
        sshd.clearRules();
        await job.release();
    });

    after(function () {
        this.timeout(120_000);
        sshd.stop();
        resetGuestInBackground(GUEST);
        removeFiles(images);
    });

    it("job held 35 s: the first attach fails on the lock after libvirt's 30 s, the retry gets it; attached once", async () => {
        const { connection, source, started } = await underHeldJob("lock-release");
        const creating = disks.create({ connection, domain: GUEST, source });
        await sleep(35_000);
        await job.release();
        assert.match(job.dumpOutput, /Failed to core dump/, "the dump really held the job until we ended it");
        const { id, outs } = await creating;
        const seconds = (Date.now() - started) / 1000;
        assert.ok(seconds >= 35, `waited for the job (${seconds.toFixed(1)} s)`);
        assert.equal(attachCalls(), 2, "one attempt refused on the lock, one that succeeded");
        assert.deepEqual(diskCount(GUEST, source), { live: 1, config: 1 });
        await convergedViaProviders(disks, id, outs, { connection, domain: GUEST, source });
        await disks.delete(id, outs);
    });

    it("job held throughout: gives up within the 90 s budget with a clear VirshError (libvirt's message, domjobinfo hint); nothing attached", async () => {
        const { connection, source, xmlBefore, started } = await underHeldJob("lock-held");
        const error = await rejectsWith(disks.create({ connection, domain: GUEST, source }), VirshError, [
            /virsh attach-device failed \(exit 1\)/,
            /cannot acquire state change lock/,
            new RegExp(`domain '${GUEST}'`),
            new RegExp(`host root@127\\.0\\.0\\.1:${BESIDE_FAULT_PORT}`),
            /Fix: another libvirt job held the domain through every retry/,
            /virsh domjobinfo/,
        ]);
        const seconds = (Date.now() - started) / 1000;
        assert.ok(seconds >= 89 && seconds < 130, `bounded: ${seconds.toFixed(1)} s`);
        assert.equal(attachCalls(), 3, "3 attempts of 30 s each fit the 90 s budget");
        assert.ok(error.message.length < 1000, "short");
        await job.release();
        assert.deepEqual(diskCount(GUEST, source), { live: 0, config: 0 }, "nothing attached");
        assert.equal(liveXml(GUEST), xmlBefore, "live XML unchanged");
        // The rerun, once the job is gone, converges.
        const { id, outs } = await disks.create({ connection, domain: GUEST, source });
        assert.deepEqual(diskCount(GUEST, source), { live: 1, config: 1 });
        await convergedViaProviders(disks, id, outs, { connection, domain: GUEST, source });
        await disks.delete(id, outs);
    });

    it("operationTimeout 5 s while the job is held: abandoned after 5 s with the domain's job in the message; not run again, nothing attached", async () => {
        const { connection, source, xmlBefore, started } = await underHeldJob("lock-timeout", { operationTimeout: 5 });
        const error = await rejectsWith(disks.create({ connection, domain: GUEST, source }), VirshError, [
            /virsh attach-device did not answer within 5 s and was abandoned/,
            /the domain's current job: Job type: +Unbounded;.*Operation: +Dump/,
            new RegExp(`domain '${GUEST}'`),
            new RegExp(`host root@127\\.0\\.0\\.1:${BESIDE_FAULT_PORT}`),
            /Fix: the domain is busy or QEMU hangs/,
        ]);
        const seconds = (Date.now() - started) / 1000;
        assert.ok(seconds >= 5 && seconds < 30, `abandoned at the bound, not libvirt's 30 s: ${seconds.toFixed(1)} s (${error.message.split("\n")[0]})`);
        assert.equal(attachCalls(), 1, "the abandoned attach is not run again");
        // libvirt still holds the abandoned call until its own 30 s wait for the job ends: it must fail then, not land.
        await sleep(32_000);
        await job.release();
        assert.deepEqual(diskCount(GUEST, source), { live: 0, config: 0 }, "nothing attached");
        assert.equal(liveXml(GUEST), xmlBefore, "live XML unchanged");
    });

    it("replayed message (virsh double, no libvirt): 7 attempts on the backoff schedule 0.25…8 s, then the clear error", async () => {
        const connection = sshd.connection();
        const source = createImage(env, "lock-replay");
        images.push(source);
        sshd.clearCalls();
        sshd.rule("attach-device", "fail", LOCK_MESSAGE.replace("\n", " "));
        const started = Date.now();
        await rejectsWith(disks.create({ connection, domain: GUEST, source }), VirshError, [
            /Timed out during operation: cannot acquire state change lock/, /Fix: another libvirt job/,
        ]);
        const seconds = (Date.now() - started) / 1000;
        assert.equal(sshd.calls().filter((c) => c === "attach-device failed").length, 7, "1 + 6 retries");
        // At least the schedule's sleeps; under 31.75 s, what one more doubling (16 s) would add to
        // them (each attempt's own round trip takes 1-2 s on the loaded rig: no tighter bound holds).
        assert.ok(seconds >= 15.75 && seconds < 31.75, `backoff 0.25+0.5+1+2+4+8 = 15.75 s: took ${seconds.toFixed(1)} s`);
        assert.deepEqual(diskCount(GUEST, source), { live: 0, config: 0 });
    });
});
