/**
 * Operations on one domain that arrive together run as one batch: one read, one exec that applies
 * them all, each resource with its own result and its own error. Counted on our own sshd
 * (127.0.0.1:2232). pll-fault4 for the Linux guest, pll-noos for a guest that ignores unplug.
 */
import assert from "node:assert/strict";
import type { AttachedDiskOutputs, AttachedInterfaceOutputs, ConnectionInputs } from "../../provider/contract";
import { DeviceStillAttachedError, InputError } from "../../provider/errors";
import { countedSuiteHooks, CountingSshd } from "../faults/counting-sshd";
import {
    configXml, createImage, createIso, diskBySource, diskByTarget, interfaceByMac, liveXml, missingPath, NOOS,
    RigEnv, typedProviders, vcpuCounts,
} from "./rig-env";

type Created<O> = { id: string; outs: O };

const GUEST = "pll-fault4";
const PORT = 2232;

function fulfilled<T>(results: Array<PromiseSettledResult<T>>): T[] {
    return results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
}

describe("rig: batches of operations on one domain (own sshd on 127.0.0.1:2232, pll-fault4, pll-noos)", function () {
    this.timeout(300_000);
    const { disks, nics, cdroms, resources } = typedProviders();
    let env: RigEnv;
    let sshd: CountingSshd;
    let connection: ConnectionInputs;
    const files: string[] = [];
    let createdDisks: Array<Created<AttachedDiskOutputs>> = [];
    let createdNics: Array<Created<AttachedInterfaceOutputs>> = [];

    countedSuiteHooks({ guests: [GUEST, NOOS], port: PORT, connectTimeout: 13 }, files, (suite) => ({ env, sshd, connection } = suite));

    it("8 disks, 2 NICs and a vCPU change sent together: one read, one exec; each lands once, distinct targets and MACs", async () => {
        const sources = Array.from({ length: 8 }, (_, i) => createImage(env, `batch${i}`));
        files.push(...sources);
        const { result, commands } = await sshd.counted(() => Promise.all([
            Promise.all(sources.map((source) => disks.create({ connection, domain: GUEST, source }))),
            Promise.all([0, 1].map(() => nics.create({ connection, domain: GUEST, type: "bridge", source: env.PLL_BRIDGE }))),
            resources.create({ connection, domain: GUEST, vcpus: 2 }),
        ]));
        [createdDisks, createdNics] = result;
        assert.equal(commands.length, 2, "one read and one apply for all 11 operations");
        const targets = createdDisks.map((d) => d.outs.target);
        assert.equal(new Set(targets).size, 8, `distinct targets: ${targets.join(" ")}`);
        const macs = createdNics.map((n) => n.outs.mac);
        assert.equal(new Set(macs).size, 2, `distinct MACs: ${macs.join(" ")}`);
        const [live, config] = [liveXml(GUEST), configXml(GUEST)];
        createdDisks.forEach(({ outs }, i) => {
            for (const xml of [live, config]) assert.equal(diskBySource(xml, sources[i])?.target, outs.target, sources[i]);
        });
        for (const mac of macs) for (const xml of [live, config]) assert.ok(interfaceByMac(xml, mac), mac);
        assert.equal(vcpuCounts(live).current, 2, "the vCPU change landed in the same exec");
        assert.equal(result[2].outs.currentVcpus, 2);
    });

    it("a batch in which one disk's source is missing: that disk alone fails, named; the other three land", async () => {
        const sources = [createImage(env, "batch-ok1"), missingPath(env, "batch-missing"), createImage(env, "batch-ok2"), createImage(env, "batch-ok3")];
        files.push(...sources);
        const { result, commands } = await sshd.counted(() => Promise.allSettled(sources.map((source) => disks.create({ connection, domain: GUEST, source }))));
        assert.equal(commands.length, 2, "still one read and one apply");
        const failed = result[1];
        assert.equal(failed.status, "rejected");
        assert.ok(failed.status === "rejected" && failed.reason instanceof InputError);
        assert.match(String(failed.status === "rejected" && (failed.reason as Error).message), new RegExp(`source ${sources[1].replace(/[.]/g, "\\.")} does not exist on the host`));
        const landed = fulfilled(result);
        assert.equal(landed.length, 3);
        const live = liveXml(GUEST);
        for (const source of [sources[0], sources[2], sources[3]]) assert.ok(diskBySource(live, source), `${source} attached`);
        assert.equal(diskBySource(live, sources[1]), undefined);
        createdDisks.push(...landed);
    });

    it("11 disks and 2 NICs deleted together: one read, one exec that detaches them all (the guest releases at once)", async () => {
        const { result, commands } = await sshd.counted(() => Promise.allSettled([
            ...createdDisks.map(({ id, outs }) => disks.delete(id, outs)),
            ...createdNics.map(({ id, outs }) => nics.delete(id, outs)),
        ]));
        assert.deepEqual(result.filter((r) => r.status === "rejected"), []);
        assert.ok(commands.length <= 3, `one read, one apply, at most one more read while the guest releases: ${commands.length}`);
        const [live, config] = [liveXml(GUEST), configXml(GUEST)];
        for (const { outs } of createdDisks) for (const xml of [live, config]) assert.equal(diskByTarget(xml, outs.target), undefined, outs.target);
        for (const { outs } of createdNics) for (const xml of [live, config]) assert.equal(interfaceByMac(xml, outs.mac), undefined, outs.mac);
    });

    it("a guest that ignores one unplug (pll-noos): that disk is reported still attached, the CD-ROM media in the same batch is ejected", async () => {
        const image = createImage(env, "batch-noos");
        const iso = createIso(env, "batch-noos");
        files.push(image, iso);
        const [disk, cdrom] = await Promise.all([
            disks.create({ connection, domain: NOOS, source: image, detachTimeout: 3 }),
            cdroms.create({ connection, domain: NOOS, target: "hdc", source: iso }),
        ]);
        const [diskDelete, cdromDelete] = await Promise.allSettled([disks.delete(disk.id, disk.outs), cdroms.delete(cdrom.id, cdrom.outs)]);
        assert.equal(cdromDelete.status, "fulfilled", "the eject is not held back by the disk");
        assert.equal(diskDelete.status, "rejected");
        const error = diskDelete.status === "rejected" ? diskDelete.reason as Error : undefined;
        assert.ok(error instanceof DeviceStillAttachedError);
        assert.match(error.message, new RegExp(`disk ${disk.outs.target} is still attached to the running guest`));
        assert.match(error.message, /domain 'pll-noos'/);
        const [live, config] = [liveXml(NOOS), configXml(NOOS)];
        assert.ok(diskByTarget(live, disk.outs.target), "the ignored disk is still live");
        assert.equal(diskByTarget(config, disk.outs.target), undefined, "and gone from the config");
        for (const xml of [live, config]) assert.equal(diskByTarget(xml, "hdc")?.source, undefined, "hdc is empty");
    });
});
