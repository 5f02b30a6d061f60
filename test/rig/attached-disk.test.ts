/**
 * AttachedDisk on the real rig (pll-guest1): a raw disk with cache none + io native attached and
 * detached, a qcow2 disk on an automatically chosen target, and three refusals that must change
 * nothing (target in use, missing source, sata on a running domain). Checked with local virsh.
 */
import assert from "node:assert/strict";
import type { AttachedDiskInputs, AttachedDiskOutputs } from "../../provider/contract";
import { InputError, providers } from "../../provider/index";
import {
    blockList, configXml, createImage, diskBySource, diskByTarget, GUEST1, imageInfo, liveXml, missingPath, rejectsWith,
    removeFiles, resetGuest, resetGuestInBackground, RigEnv, rigConnection, rigUp, typed,
} from "./rig-env";

describe("rig: AttachedDisk (pll-guest1)", function () {
    this.timeout(180_000);
    const provider = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    let env: RigEnv;
    const images: string[] = [];
    let raw: { id: string; outs: AttachedDiskOutputs; source: string };
    const inputs = (fields: Partial<AttachedDiskInputs> & { source: string }): AttachedDiskInputs =>
        ({ connection: rigConnection(env), domain: GUEST1, ...fields });
    const image = (label: string, format: "raw" | "qcow2" = "raw"): string => {
        const path = createImage(env, label, format);
        images.push(path);
        return path;
    };
    /** Both XMLs, to prove a refused call changed nothing. */
    const bothXml = (): [string, string] => [liveXml(GUEST1), configXml(GUEST1)];

    before(function () {
        this.timeout(300_000);
        env = rigUp();
        resetGuest(GUEST1);
    });

    after(() => {
        removeFiles(images);
        resetGuestInBackground(GUEST1);
    });

    it("raw disk with cache none and io native: attached live and in config as vdb", async () => {
        const source = image("raw");
        const created = await provider.create(inputs({ source, target: "vdb", format: "raw", cache: "none", io: "native" }));
        raw = { ...created, source };
        assert.equal(created.outs.target, "vdb");
        assert.equal(created.outs.attachedLive, true);
        assert.equal(created.outs.attachedConfig, true);
        assert.equal(created.outs.sourceType, "file");
        for (const [where, xml] of [["live", liveXml(GUEST1)], ["config", configXml(GUEST1)]] as const) {
            const disk = diskByTarget(xml, "vdb");
            assert.ok(disk, `${where}: no disk vdb`);
            assert.equal(disk.source, source, where);
            assert.equal(disk.device, "disk", where);
            assert.equal(disk.bus, "virtio", where);
            assert.equal(disk.driverType, "raw", where);
            assert.equal(disk.cache, "none", where);
            assert.equal(disk.io, "native", where);
            assert.match(disk.xml, /<driver name='qemu' type='raw' cache='none' io='native'\/>/, where);
        }
        assert.ok(blockList(GUEST1).some((b) => b.target === "vdb" && b.source === source), "domblklist shows vdb");
        const read = await provider.read(created.id, created.outs);
        assert.equal(read.id, created.id);
        assert.equal(read.props?.cache, "none");
        assert.equal(read.props?.io, "native");
    });

    it("a target already in use (vdb) is refused, nothing changes", async () => {
        const before = bothXml();
        await rejectsWith(provider.create(inputs({ source: image("taken"), target: "vdb" })), InputError, [/target vdb is already in use/]);
        assert.deepEqual(bothXml(), before);
    });

    it("qcow2 disk on an automatically chosen target: chosen, reported, driver type qcow2; then detached", async () => {
        const source = image("qcow2", "qcow2");
        assert.equal(imageInfo(source).format, "qcow2");
        const { id, outs } = await provider.create(inputs({ source, format: "qcow2" }));
        assert.match(outs.target, /^vd[a-z]+$/);
        assert.notEqual(outs.target, "vdb", "vdb is taken");
        assert.equal(outs.format, "qcow2");
        for (const [where, xml] of [["live", liveXml(GUEST1)], ["config", configXml(GUEST1)]] as const) {
            const disk = diskBySource(xml, source);
            assert.ok(disk, `${where}: no disk with source ${source}`);
            assert.equal(disk.target, outs.target, `${where}: reported target is the real one`);
            assert.equal(disk.driverType, "qcow2", where);
            assert.equal(disk.bus, "virtio", where);
        }
        await provider.delete(id, outs);
        assert.equal(diskBySource(liveXml(GUEST1), source), undefined, "gone from live");
        assert.equal(diskBySource(configXml(GUEST1), source), undefined, "gone from config");
    });

    it("a missing source file is refused before anything changes", async () => {
        const before = bothXml();
        const source = missingPath(env, "disk");
        await rejectsWith(provider.create(inputs({ source })), InputError, [new RegExp(`${source.replace(/[.]/g, "\\.")} does not exist on the host`)]);
        assert.deepEqual(bothXml(), before);
    });

    it("bus sata on the running domain is refused, naming the bus and suggesting virtio or scsi", async () => {
        const before = bothXml();
        await rejectsWith(provider.create(inputs({ source: image("sata"), bus: "sata", target: "sdb" })), InputError,
            [/bus sata cannot be hot-plugged into a running domain/, /virtio/, /scsi/]);
        assert.deepEqual(bothXml(), before);
    });

    it("the raw disk is detached on delete: gone from live and config", async () => {
        await provider.delete(raw.id, raw.outs);
        // delete returns only once the guest released it: no waiting here.
        assert.equal(diskByTarget(liveXml(GUEST1), "vdb"), undefined, "gone from live");
        assert.equal(diskByTarget(configXml(GUEST1), "vdb"), undefined, "gone from config");
        assert.ok(!blockList(GUEST1).some((b) => b.source === raw.source), "domblklist no longer shows it");
        const read = await provider.read(raw.id, raw.outs);
        assert.equal(read.id, undefined, "read reports it gone");
    });
});
