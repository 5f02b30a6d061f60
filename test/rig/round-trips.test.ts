/**
 * What each operation costs on the wire, counted on the server (our own sshd on 127.0.0.1:2224,
 * whose ForceCommand logs every remote command): one read and one apply per change when nothing
 * waits on the guest, one read for a refresh of many resources on a guest, one SSH handshake for
 * all of it. Counts, not times: they are exact on any machine. pll-guest2.
 */
import assert from "node:assert/strict";
import type { AttachedCdromInputs, AttachedDiskInputs, AttachedInterfaceInputs, ConnectionInputs, DomainResourcesInputs } from "../../provider/contract";
import { countedSuiteHooks, CountingSshd } from "../faults/counting-sshd";
import { createImage, createIso, GUEST2, liveXml, RigEnv, typedProviders, vcpuCounts } from "./rig-env";

/** Verbs that change a domain: a command holding none of them only reads. */
const CHANGE_VERBS = ["attach-device", "detach-disk", "detach-interface", "update-device", "domif-setlink", "change-media", "setmem", "setmaxmem", "setvcpus"];

function changes(command: string): boolean {
    return CHANGE_VERBS.some((verb) => command.includes(`'${verb}'`));
}

describe("rig: remote commands per operation, counted by the server (own sshd on 127.0.0.1:2224, pll-guest2)", function () {
    this.timeout(300_000);
    const { disks, nics, cdroms, resources } = typedProviders();
    let env: RigEnv;
    let sshd: CountingSshd;
    let connection: ConnectionInputs;
    const files: string[] = [];

    countedSuiteHooks({ guests: [GUEST2], connectTimeout: 14 }, files, (suite) => ({ env, sshd, connection } = suite));

    it("AttachedDisk: create 2 (read, attach + read back), read 1, update of a stored field 0, delete 2", async () => {
        const source = createImage(env, "rt-disk");
        files.push(source);
        const inputs: AttachedDiskInputs = { connection, domain: GUEST2, source };
        const create = await sshd.counted(() => disks.create(inputs));
        assert.equal(create.commands.length, 2, "create");
        assert.equal(create.commands.filter(changes).length, 1, "the attach and its read back share one exec");
        const { id, outs } = create.result;
        assert.equal((await sshd.counted(() => disks.read(id, outs))).commands.length, 1, "read");
        const update = await sshd.counted(() => disks.update(id, outs, { ...inputs, detachTimeout: 20 }));
        assert.equal(update.commands.length, 0, "update of detachTimeout only");
        const remove = await sshd.counted(() => disks.delete(id, outs));
        assert.equal(remove.commands.length, 2, `delete (the guest releases at once): ${remove.commands.length}`);
    });

    it("AttachedInterface: create 2, live update of the link state 2, delete 2", async () => {
        const inputs: AttachedInterfaceInputs = { connection, domain: GUEST2, type: "bridge", source: env.PLL_BRIDGE };
        const create = await sshd.counted(() => nics.create(inputs));
        assert.equal(create.commands.length, 2, "create");
        const { id, outs } = create.result;
        const update = await sshd.counted(() => nics.update(id, outs, { ...inputs, linkState: "down" }));
        assert.equal(update.commands.length, 2, "update");
        assert.equal(update.result.linkState, "down");
        const remove = await sshd.counted(() => nics.delete(id, update.result));
        assert.equal(remove.commands.length, 2, "delete");
    });

    it("AttachedCdrom in the IDE drive hdc: insert 2, swap 2, eject 2", async () => {
        const [a, b] = [createIso(env, "rt-a"), createIso(env, "rt-b")];
        files.push(a, b);
        const inputs: AttachedCdromInputs = { connection, domain: GUEST2, target: "hdc", source: a };
        const create = await sshd.counted(() => cdroms.create(inputs));
        assert.equal(create.commands.length, 2, "insert");
        const { id, outs } = create.result;
        const update = await sshd.counted(() => cdroms.update(id, outs, { ...inputs, source: b }));
        assert.equal(update.commands.length, 2, "swap");
        assert.equal(update.result.source, b);
        const remove = await sshd.counted(() => cdroms.delete(id, update.result));
        assert.equal(remove.commands.length, 2, "eject");
    });

    it("DomainResources: adopting the domain as it is 1, vCPUs up 2; a memory change is one read, one apply, then only balloon reads", async () => {
        const inputs: DomainResourcesInputs = { connection, domain: GUEST2, vcpus: 1 };
        const create = await sshd.counted(() => resources.create(inputs));
        assert.equal(create.commands.length, 1, "nothing to change: one read");
        const { id, outs } = create.result;
        const vcpus = await sshd.counted(() => resources.update(id, outs, { ...inputs, vcpus: 2 }));
        assert.equal(vcpus.commands.length, 2, "vcpus 1 → 2");
        assert.equal(vcpuCounts(liveXml(GUEST2)).current, 2);
        const memory = await sshd.counted(() => resources.update(id, vcpus.result, { ...inputs, vcpus: 2, memory: "320MiB" }));
        assert.ok(memory.commands.length >= 2, "at least the read and the apply");
        assert.equal(changes(memory.commands[0]), false, "first: the read");
        assert.equal(memory.commands.filter(changes).length, 1, "one exec carries every setmem");
        assert.equal(changes(memory.commands[1]), true, "second: the apply with its read back");
        assert.ok(memory.commands.slice(2).every((c) => !changes(c) && c.includes("'dommemstat'")), "the rest only read the balloon");
        assert.equal(memory.result.balloonSettled, true, "the guest's balloon followed");
    });

    it("refresh: 6 resources on one guest read together cost one remote command", async () => {
        const [one, two, iso] = [createImage(env, "rt-r1"), createImage(env, "rt-r2"), createIso(env, "rt-r")];
        files.push(one, two, iso);
        const disk1 = await disks.create({ connection, domain: GUEST2, source: one });
        const disk2 = await disks.create({ connection, domain: GUEST2, source: two });
        const nic = await nics.create({ connection, domain: GUEST2, type: "bridge", source: env.PLL_BRIDGE });
        const cdrom = await cdroms.create({ connection, domain: GUEST2, target: "hdc", source: iso });
        const size = await resources.create({ connection, domain: GUEST2, vcpus: 2 });
        const refresh = await sshd.counted(() => Promise.all([
            disks.read(disk1.id, disk1.outs), disks.read(disk2.id, disk2.outs), nics.read(nic.id, nic.outs),
            cdroms.read(cdrom.id, cdrom.outs), resources.read(size.id, size.outs), disks.read(disk1.id, disk1.outs),
        ]));
        assert.equal(refresh.commands.length, 1, "one read for the guest");
        assert.ok(refresh.result.every((r) => r.props !== undefined), "each read got its resource");
        const teardown = await sshd.counted(() => Promise.all([
            disks.delete(disk1.id, disk1.outs), disks.delete(disk2.id, disk2.outs), nics.delete(nic.id, nic.outs), cdroms.delete(cdrom.id, cdrom.outs),
        ]));
        assert.equal(teardown.commands.length, 2, "4 deletes together: one read, one exec that detaches and ejects");
    });

    it("one SSH handshake for everything above", () => {
        assert.equal(sshd.handshakes(), 1);
    });
});
