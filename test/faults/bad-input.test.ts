/**
 * Bad input on pll-fault1, driven as the engine drives a provider (check, then create or update):
 * each is refused before anything changes, with a message naming the field and the fix, and the
 * domain's live and inactive XML are byte-identical before and after. The guest carries a disk
 * (vdb) and a NIC (MAC_HERE) attached by the test's own virsh, and a throwaway domain holds
 * MAC_OTHER, so "taken" cases have something to collide with.
 */
import assert from "node:assert/strict";
import type {
    AttachedCdromInputs, AttachedCdromOutputs, AttachedDiskInputs, AttachedDiskOutputs, AttachedInterfaceInputs,
    AttachedInterfaceOutputs, ConnectionInputs, DomainResourcesInputs, DomainResourcesOutputs,
} from "../../provider/contract";
import { InputError, providers, VirshError } from "../../provider/index";
import {
    configXml, createImage, createIso, currentMemoryKiB, interfacesIn, missingPath, rejectsWith, removeFiles, resetGuest, resetGuestInBackground, RigEnv,
    rigConnection, rigUp, typed, vcpuCounts, virshLocal,
} from "../rig/rig-env";
import {
    assertXmlUnchanged, checkRefusal, settledXmls, defineThrowaway, DomainXmls, FAULT_GUEST, refreshThenPreviewAgree, undefineThrowaway,
} from "./security-fixtures";

const MAC_HERE = "52:54:00:bd:10:01";
const MAC_OTHER = "52:54:00:bd:10:02";

describe("bad input: refused before anything changes (pll-fault1)", function () {
    this.timeout(180_000);
    const resources = typed<DomainResourcesInputs, DomainResourcesOutputs>(providers.domainResources);
    const disks = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    const nics = typed<AttachedInterfaceInputs, AttachedInterfaceOutputs>(providers.attachedInterface);
    const cdroms = typed<AttachedCdromInputs, AttachedCdromOutputs>(providers.attachedCdrom);
    const otherDomain = `pll-bad-input-other-${process.pid}`;
    const files: string[] = [];
    let env: RigEnv;
    let connection: ConnectionInputs;
    let vdbImage = "";
    let baseline: DomainXmls;
    /** A DomainResources that manages pll-fault1 at its rig values, for the update cases. */
    let managed: { id: string; outs: DomainResourcesOutputs; inputs: DomainResourcesInputs };

    const res = (extra: Partial<DomainResourcesInputs>): DomainResourcesInputs => ({ connection, domain: FAULT_GUEST, ...extra });
    const disk = (extra: Partial<AttachedDiskInputs>): AttachedDiskInputs => ({ connection, domain: FAULT_GUEST, source: vdbImage, ...extra });
    const nic = (extra: Partial<AttachedInterfaceInputs>): AttachedInterfaceInputs => ({ connection, domain: FAULT_GUEST, type: "bridge", source: env.PLL_BRIDGE, ...extra });
    const unchanged = (what: string) => assertXmlUnchanged(FAULT_GUEST, baseline, what);

    before(function () {
        this.timeout(300_000);
        env = rigUp();
        resetGuest(FAULT_GUEST);
        connection = rigConnection(env);
        vdbImage = createImage(env, "bad-input-vdb");
        files.push(vdbImage);
        virshLocal(["attach-disk", `--domain=${FAULT_GUEST}`, `--source=${vdbImage}`, "--target=vdb", "--subdriver=raw", "--live", "--config"]);
        virshLocal(["attach-interface", `--domain=${FAULT_GUEST}`, "--type=bridge", `--source=${env.PLL_BRIDGE}`, `--mac=${MAC_HERE}`, "--model=virtio", "--live", "--config"]);
        defineThrowaway(otherDomain, `<interface type='bridge'><mac address='${MAC_OTHER}'/><source bridge='${env.PLL_BRIDGE}'/><model type='virtio'/></interface>`);
    });

    before(async function () {
        const inputs = res({ memory: "256MiB", vcpus: 1 });
        const created = await resources.create(inputs);
        managed = { ...created, inputs };
        baseline = await settledXmls(FAULT_GUEST);
    });

    after(function () {
        this.timeout(120_000);
        undefineThrowaway(otherDomain);
        resetGuestInBackground(FAULT_GUEST);
        removeFiles(files);
    });

    describe("DomainResources: memory and vCPUs", () => {
        for (const [label, memory, patterns] of [
            ["memory without a unit", "512", [/memory: "512" needs a unit/, /"512MiB"/, /virsh would read it as KiB/]],
            ["memory with an unknown unit", "512XB", [/memory: unknown unit "XB"/, /use KiB, MiB, GiB or TiB/]],
            ["memory below 64 MiB", "32MiB", [/memory: "32MiB" is 32768 KiB, under 64 MiB/, /write "512MiB"/]],
            ["memory below 64 MiB as a number of MiB", 16, [/memory: 16 is 16384 KiB, under 64 MiB/]],
        ] as const) {
            it(`${label} (${JSON.stringify(memory)}): check refuses it, for create and for update`, async () => {
                await checkRefusal(resources, res({ memory }), "memory", [...patterns]);
                await checkRefusal(resources, { ...managed.inputs, memory }, "memory", [...patterns]);
                unchanged(label);
            });
        }

        it("maxMemory with an unknown unit is refused the same way", async () => {
            await checkRefusal(resources, res({ maxMemory: "2 GB!" }), "maxMemory", [/maxMemory: "2 GB!" needs a unit/]);
        });

        it("memory above the domain's maximum with rebootPolicy \"never\": create and update refuse it, naming the way out", async () => {
            const patterns = [/memory: 256MiB → 1GiB \(above the running maximum 512MiB\)/, /rebootPolicy is "never"/, /Nothing was changed/,
                /Fix: either set rebootPolicy: "ifRequired"/, /"configOnly"/, new RegExp(`domain '${FAULT_GUEST}'`)];
            await rejectsWith(resources.create(res({ memory: "1GiB", rebootPolicy: "never" })), InputError, patterns);
            await rejectsWith(resources.update(managed.id, managed.outs, { ...managed.inputs, memory: "1GiB" }), InputError, patterns);
            unchanged("memory above the maximum");
        });

        for (const [label, vcpus] of [["0", 0], ["negative", -1], ["fractional", 1.5]] as const) {
            it(`vcpus ${label} (${vcpus}): check refuses it`, async () => {
                await checkRefusal(resources, res({ vcpus }), "vcpus", [new RegExp(`vcpus: must be a whole number of at least 1 \\(got ${vcpus}\\)`)]);
                await checkRefusal(resources, { ...managed.inputs, maxVcpus: vcpus }, "maxVcpus", [/maxVcpus: must be a whole number of at least 1/]);
                unchanged(`vcpus ${label}`);
            });
        }

        it("after every refused update, refresh then preview agree, and with virsh", async () => {
            const props = await refreshThenPreviewAgree(resources, managed.id, managed.outs, managed.inputs);
            assert.equal(props.memory, "256MiB");
            assert.equal(currentMemoryKiB(configXml(FAULT_GUEST)), 262144);
            assert.equal(props.vcpus, vcpuCounts(configXml(FAULT_GUEST)).current);
            unchanged("refresh");
        });
    });

    describe("where: domain and libvirt URI", () => {
        it("an unknown domain: every resource refuses it, naming the domain and how to list them", async () => {
            const domain = "pll-no-such-domain";
            const patterns = [/failed to get domain 'pll-no-such-domain'/, /domain 'pll-no-such-domain'/, /virsh list --all/];
            await rejectsWith(resources.create({ connection, domain, memory: "256MiB" }), VirshError, patterns);
            await rejectsWith(disks.create({ connection, domain, source: vdbImage }), VirshError, patterns);
            await rejectsWith(nics.create({ connection, domain, type: "bridge", source: env.PLL_BRIDGE, mac: "52:54:00:bd:10:77" }), VirshError, patterns);
            await rejectsWith(cdroms.create({ connection, domain, target: "hdc" }), VirshError, patterns);
            unchanged("unknown domain");
        });

        for (const uri of ["bogus:///system", "qemu:///nonexistent", "qemu:///system?x=$(touch pllcanary-uri)"]) {
            it(`an unknown libvirt URI (${uri}): refused at once (not retried), naming connection.uri and a working one`, async () => {
                const started = Date.now();
                await rejectsWith(resources.create(res({ connection: { ...connection, uri }, memory: "200MiB" })), VirshError, [
                    /failed to connect to the hypervisor/, /connection\.uri names no hypervisor/, /qemu:\/\/\/system/,
                ]);
                // A retried failure waits its backoff alone, 0.25 + 0.5 + 1 + 2 + 4 + 8 = 15.75 s, before it gives up.
                assert.ok(Date.now() - started < 15_000, `took ${Date.now() - started} ms: an unknown URI must not be retried`);
                unchanged(`unknown URI ${uri}`);
            });
        }
    });

    describe("AttachedDisk", () => {
        it("a target already taken (vdb): refused, offering the next free one", async () => {
            const other = createImage(env, "bad-input-other");
            files.push(other);
            await rejectsWith(disks.create(disk({ source: other, target: "vdb" })), InputError, [/target vdb is already in use/, /Fix: pick a free name such as vda/]);
            unchanged("target taken");
        });

        it("the same source already attached as vdb, asked for under another target: refused", async () => {
            await rejectsWith(disks.create(disk({ target: "vdc" })), InputError, [/source .* is already attached as vdb/, /detach it first/]);
            unchanged("source already attached");
        });

        for (const [target, bus] of [["sdb", "virtio"], ["vdc", "scsi"], ["hdd", "virtio"]] as const) {
            it(`a target that does not fit the bus (${target} on ${bus}): refused, naming a fitting one`, async () => {
                const other = createImage(env, `bad-input-bus-${target}`);
                files.push(other);
                await rejectsWith(disks.create(disk({ source: other, target, bus })), InputError, [
                    new RegExp(`target ${target} does not fit bus ${bus}`), new RegExp(`Fix: use a ${bus} name such as ${bus === "virtio" ? "vd" : "sd"}a`),
                ]);
                unchanged(`${target} on ${bus}`);
            });
        }

        it("a source file that does not exist on the host: refused, naming the path and how to create it", async () => {
            const path = missingPath(env, "bad-input");
            await rejectsWith(disks.create(disk({ source: path })), InputError, [
                new RegExp(`source ${path.replace(/[.]/g, "\\.")} does not exist on the host`), /Fix: create it first \(qemu-img create/, /No such file/,
            ]);
            unchanged("missing source");
        });

        it("a \"block device\" that is not one: a regular file as sourceType block, a directory, a character device", async () => {
            const file = createImage(env, "bad-input-notblock");
            files.push(file);
            await rejectsWith(disks.create(disk({ source: file, sourceType: "block" })), InputError, [
                /is a regular file, not a block device/, /Fix: set sourceType to "file" or leave it unset/,
            ]);
            await rejectsWith(disks.create(disk({ source: env.PLL_IMAGES, sourceType: "block" })), InputError, [
                /source .* is a directory, not a file or block device/, /Fix: point it at an image file or a block device/,
            ]);
            await rejectsWith(disks.create(disk({ source: "/dev/null", sourceType: "block" })), InputError, [/is a character special file, not a file or block device/]);
            unchanged("not a block device");
        });
    });

    describe("AttachedInterface", () => {
        it("a bridge that does not exist: refused, naming it and how to create it", async () => {
            await rejectsWith(nics.create(nic({ source: "nosuchbr0" })), InputError, [
                /source: no Linux bridge named 'nosuchbr0' on the host/, /Fix: create it \(ip link add nosuchbr0 type bridge/,
            ]);
            await rejectsWith(nics.create(nic({ type: "network", source: "nosuchnet" })), InputError, [/no libvirt network named 'nosuchnet'/, /virsh net-list --all/]);
            unchanged("missing bridge");
        });

        for (const [mac, pattern] of [
            ["52:54:00:zz:00:01", /mac: must look like 52:54:00:12:34:56/],
            ["52-54-00-00-00-01", /mac: must look like/],
            ["52:54:00:00:01", /mac: must look like/],
            ["01:00:5e:00:00:01", /mac: is a multicast address; the first octet must be even/],
        ] as const) {
            it(`a malformed MAC (${mac}): check refuses it`, async () => {
                await checkRefusal(nics, nic({ mac }), "mac", [pattern]);
            });
        }

        it("a MAC another domain uses: refused, naming that domain", async () => {
            await rejectsWith(nics.create(nic({ mac: MAC_OTHER })), InputError, [
                new RegExp(`mac ${MAC_OTHER} is already used by domain '${otherDomain}'`), /Fix: choose another MAC/,
            ]);
            unchanged("MAC of another domain");
        });

        it("a MAC this domain already uses for another NIC (other model): refused, naming that NIC", async () => {
            await rejectsWith(nics.create(nic({ mac: MAC_HERE, model: "e1000" })), InputError, [
                new RegExp(`mac ${MAC_HERE} is already used by this domain's virtio interface on bridge '${env.PLL_BRIDGE}'`), /choose another MAC/,
            ]);
            unchanged("MAC of this domain");
        });

        it("a MAC this domain uses for exactly the NIC asked for is adopted (the retry path), not attached twice", async () => {
            const inputs = nic({ mac: MAC_HERE });
            const { id, outs } = await nics.create(inputs);
            assert.equal(outs.mac, MAC_HERE);
            assert.equal(interfacesIn(configXml(FAULT_GUEST)).filter((i) => i.mac === MAC_HERE).length, 1);
            await refreshThenPreviewAgree(nics, id, outs, inputs);
            unchanged("adopted NIC");
        });
    });

    describe("AttachedCdrom", () => {
        it("a CD-ROM target that is a disk (vdb): refused, naming the fix", async () => {
            const iso = createIso(env, "bad-input");
            files.push(iso);
            await rejectsWith(cdroms.create({ connection, domain: FAULT_GUEST, target: "vdb", source: iso }), InputError, [
                /target vdb is a disk, not a CD-ROM drive/, /Fix: name a CD-ROM drive/,
            ]);
            unchanged("cdrom on a disk");
        });

        it("an ISO that does not exist: refused before the tray is touched", async () => {
            const path = missingPath(env, "bad-input-iso");
            await rejectsWith(cdroms.create({ connection, domain: FAULT_GUEST, target: "hdc", source: path }), InputError, [/does not exist on the host/]);
            unchanged("missing ISO");
        });
    });
});
