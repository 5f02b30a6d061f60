/**
 * sshd killed (SIGKILL: listener and per-connection processes) and restarted, between two
 * operations and during one. Our own sshd on 127.0.0.1:2223 (fault-env.ts): the rig's sshd on 2222
 * is never touched. Guest pll-fault2.
 *
 * "During one" cuts the connection while virsh runs on the host: the `virsh` double on our sshd's
 * PATH runs the real virsh and then holds its answer for a few seconds ("after"), or waits before
 * running it ("before"), so the kill lands at a known point. The provider must reconnect, read the
 * XML, and only then decide whether to run the change again: one disk, one NIC, no lost detach.
 */
import assert from "node:assert/strict";
import type { AttachedDiskInputs, AttachedDiskOutputs, AttachedInterfaceInputs, AttachedInterfaceOutputs } from "../../provider/contract";
import { providers } from "../../provider/index";
import {
    configXml, createImage, diskCount, interfacesIn, liveXml, removeFiles, resetGuest, resetGuestInBackground, RigEnv, rigUp, typed, virshLocal, waitFor,
} from "../rig/rig-env";
import { convergedViaProviders, FaultSshd, sleep } from "./fault-env";

const GUEST = "pll-fault2";

describe("faults: sshd killed and restarted (own sshd on 127.0.0.1:2223, pll-fault2)", function () {
    this.timeout(180_000);
    const disks = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    const nics = typed<AttachedInterfaceInputs, AttachedInterfaceOutputs>(providers.attachedInterface);
    let env: RigEnv;
    let sshd: FaultSshd;
    const images: string[] = [];

    before(function () {
        this.timeout(300_000);
        env = rigUp();
        sshd = new FaultSshd(env);
        sshd.start();
        resetGuest(GUEST);
    });

    afterEach(() => {
        sshd.clearRules();
        if (!sshd.listening()) sshd.restart();
    });

    after(function () {
        this.timeout(120_000);
        sshd.stop();
        resetGuestInBackground(GUEST);
        removeFiles(images);
    });

    it("between two operations: the pooled connection dies with sshd, the next operation reconnects", async () => {
        const connection = sshd.connection();
        const [a, b] = [createImage(env, "sshd-a"), createImage(env, "sshd-b")];
        images.push(a, b);
        const first = await disks.create({ connection, domain: GUEST, source: a });
        assert.equal(sshd.sessions().sshdChildren, 1, "one pooled connection");

        const killed = sshd.kill();
        assert.ok(killed.length >= 2, `listener and the connection's sshd killed: ${killed.join(" ")}`);
        sshd.restart();
        assert.equal(sshd.sessions().sshdChildren, 0, "the new sshd has no connection yet");

        const second = await disks.create({ connection, domain: GUEST, source: b });
        assert.equal(sshd.sessions().sshdChildren, 1, "reconnected: one connection again");
        assert.notEqual(second.outs.target, first.outs.target);
        assert.deepEqual(diskCount(GUEST, a), { live: 1, config: 1 });
        assert.deepEqual(diskCount(GUEST, b), { live: 1, config: 1 });

        await convergedViaProviders(disks, first.id, first.outs, { connection, domain: GUEST, source: a });
        await convergedViaProviders(disks, second.id, second.outs, { connection, domain: GUEST, source: b });
        await disks.delete(first.id, first.outs);
        await disks.delete(second.id, second.outs);
        assert.deepEqual(diskCount(GUEST, a), { live: 0, config: 0 });
        assert.deepEqual(diskCount(GUEST, b), { live: 0, config: 0 });
    });

    it("during an attach whose answer is lost (the disk landed): reconnects, sees it in the XML, does not attach twice", async () => {
        const connection = sshd.connection();
        const source = createImage(env, "sshd-lost-attach");
        images.push(source);
        sshd.clearCalls();
        sshd.rule("attach-device", "after", "4");
        const creating = disks.create({ connection, domain: GUEST, source });
        await waitFor("the attach to run on the host", () => sshd.calls().includes("attach-device ran 0"), { timeoutMs: 30_000 });
        sshd.kill();
        sshd.clearRules();
        assert.deepEqual(diskCount(GUEST, source), { live: 1, config: 1 }, "the attach happened; only its answer is lost");
        await sleep(1500);
        sshd.restart();

        const { id, outs } = await creating;
        assert.deepEqual(diskCount(GUEST, source), { live: 1, config: 1 }, "attached once");
        assert.equal(sshd.calls().filter((c) => c === "attach-device start").length, 1, "attach-device ran once: the XML said it landed");
        assert.equal(outs.attachedLive && outs.attachedConfig, true);
        await convergedViaProviders(disks, id, outs, { connection, domain: GUEST, source });
        await disks.delete(id, outs);
    });

    it("during a NIC attach with no MAC given (the provider picks it): the new MAC is adopted, not a second NIC", async () => {
        const connection = sshd.connection();
        const before = interfacesIn(liveXml(GUEST)).length;
        sshd.clearCalls();
        sshd.rule("attach-device", "after", "4");
        const creating = nics.create({ connection, domain: GUEST, type: "bridge", source: env.PLL_BRIDGE });
        await waitFor("the attach to run on the host", () => sshd.calls().includes("attach-device ran 0"), { timeoutMs: 30_000 });
        sshd.kill();
        sshd.clearRules();
        await sleep(1500);
        sshd.restart();

        const { id, outs } = await creating;
        const live = interfacesIn(liveXml(GUEST));
        const config = interfacesIn(configXml(GUEST));
        assert.equal(live.length, before + 1, `one NIC more live: ${live.map((i) => i.mac).join(" ")}`);
        assert.equal(config.filter((i) => i.mac === outs.mac).length, 1, "in the config once");
        assert.ok(live.some((i) => i.mac === outs.mac), "the adopted MAC is the new one");
        assert.equal(sshd.calls().filter((c) => c === "attach-device start").length, 1, "attach-device ran once");
        await convergedViaProviders(nics, id, outs, { connection, domain: GUEST, type: "bridge", source: env.PLL_BRIDGE });
        await nics.delete(id, outs);
        assert.equal(interfacesIn(liveXml(GUEST)).length, before);
    });

    /** A disk attached, then its delete started, with the double holding virsh detach-disk `holdSeconds` before it runs. */
    async function deleteHeldBeforeDetach(label: string, holdSeconds: number) {
        const source = createImage(env, label);
        images.push(source);
        const { id, outs } = await disks.create({ connection: sshd.connection(), domain: GUEST, source });
        sshd.clearCalls();
        sshd.rule("detach-disk", "before", String(holdSeconds));
        const deleting = disks.delete(id, outs);
        await waitFor("the detach to start on the host", () => sshd.calls().includes("detach-disk start"), { timeoutMs: 30_000 });
        return { source, id, outs, deleting };
    }

    it("during a detach (cut before virsh ran): reconnects, detaches, the disk is gone from live and config", async () => {
        // The orphaned double runs its detach 10 s after it started: by then the provider's own, run
        // after it reconnected, is done and the guest has released the disk (a second unplug request
        // while the guest is still releasing it, on a loaded machine, could make it keep the disk).
        const { source, id, outs, deleting } = await deleteHeldBeforeDetach("sshd-lost-detach", 10);
        sshd.kill();
        sshd.clearRules();
        await sleep(1000);
        sshd.restart();
        await deleting;
        // The orphaned double still runs its detach: it must find nothing to do.
        await waitFor("the orphaned detach to run", () => sshd.calls().some((c) => c.startsWith("detach-disk ran ")), { timeoutMs: 30_000 });
        assert.deepEqual(diskCount(GUEST, source), { live: 0, config: 0 }, "detached from both");
        const read = await disks.read(id, outs);
        assert.equal(read.id, undefined, "refresh drops it: it is really gone");
    });

    it("a detach that another one beat to it (virsh: 'No disk found'): the XML after decides, and the delete succeeds", async () => {
        const { source, id, outs, deleting } = await deleteHeldBeforeDetach("sshd-beaten-detach", 10);
        // As an orphaned session of a lost answer would: the disk detached from both halves meanwhile,
        // and released by the guest before the provider's own detach runs.
        virshLocal(["detach-disk", GUEST, outs.target, "--config"]);
        virshLocal(["detach-disk", GUEST, outs.target, "--live"]);
        await waitFor("the guest to release the disk", () => diskCount(GUEST, source).live === 0, { timeoutMs: 9_000 });
        await deleting;
        assert.ok(sshd.calls().some((c) => c === "detach-disk ran 1"), "the provider's detach found no such disk");
        assert.deepEqual(diskCount(GUEST, source), { live: 0, config: 0 });
        assert.equal((await disks.read(id, outs)).id, undefined, "refresh drops it");
    });

    it("sshd stays down through an operation: a clear HostUnreachableError, nothing half done; after restart a rerun converges", async () => {
        const connection = sshd.connection({ connectTimeout: 3 });
        const source = createImage(env, "sshd-down");
        images.push(source);
        sshd.kill();
        const started = Date.now();
        const error = await disks.create({ connection, domain: GUEST, source }).then(() => undefined, (e: Error) => e);
        assert.ok(error, "create fails while sshd is down");
        assert.equal(error.name, "HostUnreachableError");
        assert.match(error.message, /cannot reach the SSH server: ECONNREFUSED/);
        assert.match(error.message, /root@127\.0\.0\.1:2223/);
        assert.ok(Date.now() - started < 10_000, `fast: ${Date.now() - started} ms`);
        assert.deepEqual(diskCount(GUEST, source), { live: 0, config: 0 });
        sshd.restart();
        const { id, outs } = await disks.create({ connection, domain: GUEST, source });
        assert.deepEqual(diskCount(GUEST, source), { live: 1, config: 1 });
        await convergedViaProviders(disks, id, outs, { connection, domain: GUEST, source });
        await disks.delete(id, outs);
    });
});
