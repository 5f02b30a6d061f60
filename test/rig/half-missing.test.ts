/**
 * Issue 14: a device removed by hand from one half only — the persistent config (`virsh
 * detach-disk --config`) or the running guest (`--live`) — is drift. refresh (read) records the
 * missing half, the diff shows a change that is not a replacement, and the update attaches the
 * missing half with the same target or MAC, leaving the half that is there untouched (its XML
 * byte for byte: the guest never saw it go). A disk, a NIC and a hot-plugged CD-ROM drive, each half. pll-fault1.
 */
import assert from "node:assert/strict";
import type { AttachedCdromInputs, AttachedDiskInputs, AttachedInterfaceInputs } from "../../provider/contract";
import { convergedViaProviders } from "../faults/fault-env";
import {
    configXml, createImage, createIso, diskByTarget, disksIn, interfaceByMac, interfacesIn, liveXml, Provider, removeFiles, resetGuest, resetGuestInBackground, RigEnv, rigConnection, rigUp,
    typedProviders, virshLocal, waitFor,
} from "./rig-env";

const GUEST = "pll-fault1";

type Half = "live" | "config";
const xmlOf = (half: Half): string => (half === "live" ? liveXml(GUEST) : configXml(GUEST));
const other = (half: Half): Half => (half === "live" ? "config" : "live");

interface Case<I, O> {
    provider: Provider<I, O>;
    inputs: () => I;
    /** The device's XML block in one half, undefined when that half lacks it. */
    block: (outs: O, half: Half) => string | undefined;
    /** virsh arguments that remove it, before --live/--config. */
    removeArgs: (outs: O) => string[];
    /** What makes it the same device (source, cache, serial; MAC, bridge, model, link), from its XML block. */
    essentials: (block: string) => unknown;
}

describe(`rig: a device removed by hand from one half is drift, repaired by up (${GUEST})`, function () {
    this.timeout(240_000);
    const { disks, nics, cdroms } = typedProviders();
    let env: RigEnv;
    const images: string[] = [];

    before(function () {
        this.timeout(300_000);
        env = rigUp();
        resetGuest(GUEST);
    });

    after(() => {
        removeFiles(images);
        resetGuestInBackground(GUEST);
    });

    async function removedByHandThenRepaired<I, O extends { attachedLive: boolean; attachedConfig: boolean }>(c: Case<I, O>, removed: Half): Promise<void> {
        const inputs = c.inputs();
        const { id, outs } = await c.provider.create(inputs);
        const kept = other(removed);
        const keptBefore = c.block(outs, kept);
        const removedBefore = c.block(outs, removed);
        assert.ok(keptBefore && removedBefore, "attached in both halves");

        virshLocal([...c.removeArgs(outs), `--${removed}`]);
        await waitFor(`the device gone from the ${removed} XML`, () => c.block(outs, removed) === undefined, { timeoutMs: 30_000 });
        assert.equal(c.block(outs, kept), keptBefore, `the ${kept} half is as it was`);

        const read = await c.provider.read(id, outs);
        assert.equal(read.id, id, "refresh keeps the resource");
        assert.ok(read.props);
        assert.equal(read.props[removed === "live" ? "attachedLive" : "attachedConfig"], false, `refresh records the ${removed} half missing`);
        const diff = await c.provider.diff(id, read.props, await c.provider.check(inputs));
        assert.equal(diff.changes, true, "the preview shows a change");
        assert.deepEqual(diff.replaces, [], "not a replacement");

        const applied = await c.provider.apply(id, read.props, inputs);
        assert.equal(applied.replaced, false);
        assert.equal(applied.outs.attachedLive, true);
        assert.equal(applied.outs.attachedConfig, true);
        assert.equal(c.block(outs, kept), keptBefore, `the ${kept} half is untouched (the same device XML)`);
        const back = c.block(outs, removed);
        assert.ok(back, `the ${removed} half is back, with the same target or MAC`);
        assert.deepEqual(c.essentials(back), c.essentials(removedBefore), `the ${removed} half is the same device`);
        await convergedViaProviders(c.provider, id, applied.outs, inputs);
        await c.provider.delete(id, applied.outs);
    }

    const disk = (): Case<AttachedDiskInputs, Awaited<ReturnType<typeof disks.create>>["outs"]> => ({
        provider: disks,
        inputs: () => {
            const source = createImage(env, "half");
            images.push(source);
            return { connection: rigConnection(env), domain: GUEST, source, cache: "none", serial: "HALF1" };
        },
        block: (outs, half) => diskByTarget(xmlOf(half), outs.target)?.xml,
        removeArgs: (outs) => ["detach-disk", GUEST, outs.target],
        essentials: (block) => {
            const { source, bus, cache, driverType, readonly } = disksIn(`<devices>${block}</devices>`)[0];
            return { source, bus, cache, driverType, readonly, serial: /<serial>([^<]*)<\/serial>/.exec(block)?.[1] };
        },
    });

    const nic = (): Case<AttachedInterfaceInputs, Awaited<ReturnType<typeof nics.create>>["outs"]> => ({
        provider: nics,
        inputs: () => ({ connection: rigConnection(env), domain: GUEST, type: "bridge", source: env.PLL_BRIDGE, linkState: "down" }),
        block: (outs, half) => interfaceByMac(xmlOf(half), outs.mac)?.xml,
        removeArgs: (outs) => ["detach-interface", GUEST, "bridge", outs.mac],
        essentials: (block) => {
            const { type, mac, bridge, model, linkState } = interfacesIn(block)[0];
            return { type, mac, bridge, model, linkState };
        },
    });

    const drive = (): Case<AttachedCdromInputs, Awaited<ReturnType<typeof cdroms.create>>["outs"]> => ({
        provider: cdroms,
        inputs: () => {
            const source = createIso(env, "half");
            images.push(source);
            return { connection: rigConnection(env), domain: GUEST, source };
        },
        block: (outs, half) => diskByTarget(xmlOf(half), outs.target)?.xml,
        removeArgs: (outs) => ["detach-disk", GUEST, outs.target],
        essentials: (block) => {
            const { device, source, bus, readonly } = disksIn(`<devices>${block}</devices>`)[0];
            return { device, source, bus, readonly };
        },
    });

    for (const removed of ["config", "live"] as const) {
        it(`AttachedDisk removed from the ${removed} by hand: drift, the ${removed} half attached again (same target), the other untouched`,
            () => removedByHandThenRepaired(disk(), removed));
        it(`AttachedInterface removed from the ${removed} by hand: drift, the ${removed} half attached again (same MAC, link down), the other untouched`,
            () => removedByHandThenRepaired(nic(), removed));
        it(`AttachedCdrom (a drive it hot-plugged) removed from the ${removed} by hand: drift, the ${removed} half attached again (same target and media), the other untouched`,
            () => removedByHandThenRepaired(drive(), removed));
    }
});
