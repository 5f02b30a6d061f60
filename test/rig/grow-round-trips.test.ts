/**
 * What the growth operations (issue 9) cost on the wire, counted by our own counting sshd on
 * 127.0.0.1:2230: one read and one apply per change when nothing waits on the guest, as for every
 * other operation (round-trips.test.ts). pll-grow1 and pll-grow2.
 */
import assert from "node:assert/strict";
import type { AttachedDiskInputs, AttachedDiskOutputs, ConnectionInputs, DomainResourcesInputs, DomainResourcesOutputs } from "../../provider/contract";
import { providers } from "../../provider/index";
import { countedSuiteHooks, CountingSshd } from "../faults/counting-sshd";
import { GROW1, GROW2 } from "./grow-env";
import { missingPath, RigEnv, typed } from "./rig-env";

const GROW_COUNTING_PORT = 2230;

describe("rig: remote commands per growth operation, counted by the server (own sshd on 127.0.0.1:2230, pll-grow1/2)", function () {
    this.timeout(300_000);
    const disks = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    const resources = typed<DomainResourcesInputs, DomainResourcesOutputs>(providers.domainResources);
    let env: RigEnv;
    let sshd: CountingSshd;
    let connection: ConnectionInputs;
    const files: string[] = [];

    countedSuiteHooks({ guests: [GROW1, GROW2], port: GROW_COUNTING_PORT, connectTimeout: 13 }, files, (suite) => ({ env, sshd, connection } = suite));

    it("AttachedDisk: create from nothing 2, grow + I/O limits in one update 2, refresh 1, delete with deleteImage 4", async () => {
        const source = missingPath(env, "rt-grow");
        files.push(source);
        const inputs: AttachedDiskInputs = { connection, domain: GROW1, source, size: "64MiB", deleteImage: true };
        const create = await sshd.counted(() => disks.create(inputs));
        assert.equal(create.commands.length, 2, "create: read (with the size probes), create + attach + read back");
        const { id, outs } = create.result;
        const update = await sshd.counted(() => disks.update(id, outs, { ...inputs, size: "128MiB", iotune: { totalIopsSec: 100 } }));
        assert.equal(update.commands.length, 2, "update: read (capacity), blockresize + blkdeviotune + read back");
        assert.equal(update.result.capacityBytes, 128 * 1024 * 1024);
        assert.equal((await sshd.counted(() => disks.read(id, update.result))).commands.length, 1, "refresh");
        const remove = await sshd.counted(() => disks.delete(id, update.result));
        // The image's identity and its users are read once the guest released the disk (issue 14: only its own, unused file goes).
        assert.equal(remove.commands.length, 4, "delete: read, detach + read back, the image's identity and every domain's disks, remove the image");
    });

    it("DomainResources: vCPUs above the host's CPUs 2 (the maxvcpus read joins the first)", async () => {
        const create = await sshd.counted(() => resources.create({ connection, domain: GROW1, vcpus: 3 }));
        assert.equal(create.commands.length, 2);
    });

    it("DomainResources: memory past the boot maximum (virtio-mem): the read, the apply (which waits for the guest to plug), read-only polls only if it is slower", async () => {
        const create = await sshd.counted(() => resources.create({ connection, domain: GROW2, memory: "1280MiB" }));
        console.log(`      virtio-mem grow: ${create.commands.length} remote commands`);
        assert.ok(create.commands.length >= 2);
        assert.equal(create.commands.slice(0, 2).filter((c) => c.includes("'update-memory-device'")).length, 1, "the device's change is in the apply");
        assert.deepEqual(create.commands.slice(2).filter((c) => /'(update-memory-device|setmem)'/.test(c)), [], "the polls only read");
        assert.equal(create.result.outs.hotplugSettled, true);
    });
});
