/**
 * The seed's operations on the real Debian guest with its agent (issue 11, pll-deb1): a disk
 * attached, grown live and detached; a NIC attached and detached by MAC; an ISO inserted and
 * swapped in the IDE drive. Each checked with the test's own virsh and with the guest's own view:
 * its console report (disk sizes) and commands run inside it through the agent (NICs, CD-ROM media).
 */
import assert from "node:assert/strict";
import { DEB_AGENT, guestExec, guestMacs, waitForAgent, waitForFields } from "./debian-env";
import { createIso, diskByTarget, interfaceByMac, liveXml, configXml, missingPath, removeFiles, resetGuest, resetGuestInBackground, RigEnv, rigConnection, rigUp, typedProviders, waitFor } from "./rig-env";

const MiB = 1024 * 1024;
const SECTORS_PER_MiB = MiB / 512;

describe("rig: the seed's operations on a Debian guest, seen from inside it (pll-deb1)", function () {
    this.timeout(600_000);
    const { disks, nics, cdroms } = typedProviders();
    let env: RigEnv;
    const files: string[] = [];
    const placement = () => ({ connection: rigConnection(env), domain: DEB_AGENT });

    before(async function () {
        env = rigUp();
        resetGuest(DEB_AGENT);
        await waitForAgent(DEB_AGENT);
    });

    after(function () {
        resetGuestInBackground(DEB_AGENT);
        removeFiles(files);
    });

    it("a disk: attached (64MiB image created), grown live to 128MiB, detached; the guest sees each step", async () => {
        const source = missingPath(env, "deb-disk");
        files.push(source);
        const inputs = { ...placement(), source, target: "vdb", size: "64MiB" };
        const created = await disks.create(inputs);
        assert.equal(diskByTarget(liveXml(DEB_AGENT), "vdb")?.source, source);
        await waitForFields(env, DEB_AGENT, "vdb at 64MiB", (f) => f.vdb === String(64 * SECTORS_PER_MiB));
        const grown = await disks.apply(created.id, created.outs, { ...inputs, size: "128MiB" });
        assert.equal(grown.replaced, false);
        assert.equal(grown.outs.capacityBytes, 128 * MiB);
        await waitForFields(env, DEB_AGENT, "vdb at 128MiB", (f) => f.vdb === String(128 * SECTORS_PER_MiB));
        await disks.delete(created.id, grown.outs);
        assert.equal(diskByTarget(liveXml(DEB_AGENT), "vdb"), undefined, "live");
        assert.equal(diskByTarget(configXml(DEB_AGENT), "vdb"), undefined, "config");
        await waitForFields(env, DEB_AGENT, "vdb gone", (f) => f.vdb === undefined);
    });

    it("a NIC on the rig's bridge: attached with the MAC the provider chose, detached by that MAC; the guest lists it, then not", async () => {
        const { id, outs } = await nics.create({ ...placement(), type: "bridge", source: env.PLL_BRIDGE });
        const mac = outs.mac.toLowerCase();
        assert.ok(interfaceByMac(liveXml(DEB_AGENT), mac), "live");
        await waitFor(`the guest to list ${mac}`, () => guestMacs(DEB_AGENT).includes(mac), { describe: () => guestMacs(DEB_AGENT).join(",") });
        await nics.delete(id, outs);
        assert.equal(interfaceByMac(liveXml(DEB_AGENT), mac), undefined, "live");
        assert.equal(interfaceByMac(configXml(DEB_AGENT), mac), undefined, "config");
        await waitFor(`the guest to drop ${mac}`, () => !guestMacs(DEB_AGENT).includes(mac), { describe: () => guestMacs(DEB_AGENT).join(",") });
    });

    it("an ISO in the IDE drive hdc, then swapped live: the guest reads the new media", async () => {
        const [iso1, iso2] = [createIso(env, "deb-cd1"), createIso(env, "deb-cd2")];
        files.push(iso1, iso2);
        const media = () => guestExec(DEB_AGENT, "head", ["-c", "64", "/dev/sr0"]).catch((error: Error) => error.message);
        const { id, outs } = await cdroms.create({ ...placement(), target: "hdc", source: iso1 });
        await waitFor("the guest to read deb-cd1", async () => (await media()).includes("test media deb-cd1"), { describe: () => "" });
        const swapped = await cdroms.apply(id, outs, { ...placement(), target: "hdc", source: iso2 });
        assert.equal(swapped.replaced, false, "a media swap, not a replacement");
        assert.equal(diskByTarget(liveXml(DEB_AGENT), "hdc")?.source, iso2);
        await waitFor("the guest to read deb-cd2", async () => (await media()).includes("test media deb-cd2"), { describe: () => "" });
        await cdroms.delete(id, swapped.outs);
    });
});
