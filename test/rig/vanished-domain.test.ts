/**
 * Issue 14: the domain is undefined (by hand, or by another stack) before its devices are
 * destroyed. Each device's delete (a disk with deleteImage, a NIC, a hot-plugged CD-ROM drive, the
 * media of a drive the domain had) must resolve with a warning in the engine's log naming the
 * domain and host, keep the disk's image, and change nothing else on the host; any other failure
 * to read the domain stays an error. On a throwaway domain of this suite's own (pll-t14-attach-gone).
 */
import assert from "node:assert/strict";
import { statSync } from "fs";
import { VirshError } from "../../provider/index";
import { withWarnings } from "./grow-env";
import {
    createIso, domState, missingPath, rejectsWith, removeFiles, RigEnv, rigConnection, rigUp, typedProviders,
} from "./rig-env";
import { ThrowawayDomain } from "./throwaway-domain";

const DOMAIN = "pll-t14-attach-gone";

/** Inode, size and modification time: the same file, unchanged. */
function fileIdentity(path: string): string {
    const stat = statSync(path);
    return `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
}

describe(`rig: devices of a domain undefined by hand (${DOMAIN})`, function () {
    this.timeout(180_000);
    const { disks, nics, cdroms } = typedProviders();
    let env: RigEnv;
    let domain: ThrowawayDomain;
    const files: string[] = [];
    const place = () => ({ connection: rigConnection(env), domain: DOMAIN });

    before(function () {
        this.timeout(300_000);
        env = rigUp();
        domain = new ThrowawayDomain(env, DOMAIN, "pll-fault1");
        domain.create();
    });

    after(() => {
        domain.remove();
        removeFiles(files);
    });

    it("every device's delete resolves with a warning naming the domain and host; the created image is kept; nothing else changes", async () => {
        const image = missingPath(env, "gone-disk");
        const iso1 = createIso(env, "gone-cd1");
        const iso2 = createIso(env, "gone-cd2");
        files.push(image, iso1, iso2);
        const disk = await disks.create({ ...place(), source: image, size: "16MiB", deleteImage: true });
        assert.equal(disk.outs.imageCreated, true);
        const nic = await nics.create({ ...place(), type: "bridge", source: env.PLL_BRIDGE });
        const drive = await cdroms.create({ ...place(), source: iso1 });
        assert.equal(drive.outs.ownsDrive, true);
        const media = await cdroms.create({ ...place(), target: "hdc", source: iso2 });
        assert.equal(media.outs.ownsDrive, false);

        // Other engineers' domains and files come and go on the shared rig: the rig's own guests and this test's files are compared.
        const rigGuests = [...env.PLL_GUESTS.split(" "), env.PLL_NOOS];
        const statesBefore = rigGuests.map(domState);
        const filesBefore = files.map(fileIdentity);
        domain.remove();

        const host = `${env.PLL_SSH_USER}@${env.PLL_SSH_HOST}:${env.PLL_SSH_PORT}`;
        const said = (label: string) => new RegExp(`domain '${DOMAIN}' on host ${host.replace(/\./g, "\\.")} no longer exists: ${label} is taken as removed with it`);
        const deletes: Array<[string, () => Promise<void>]> = [
            [`disk ${disk.outs.target}`, () => disks.delete(disk.id, disk.outs)],
            [`interface ${nic.outs.mac}`, () => nics.delete(nic.id, nic.outs)],
            [`cdrom ${drive.outs.target}`, () => cdroms.delete(drive.id, drive.outs)],
            ["the media in cdrom hdc", () => cdroms.delete(media.id, media.outs)],
        ];
        for (const [label, remove] of deletes) {
            const { warnings } = await withWarnings(remove);
            assert.equal(warnings.length, 1, `${label}: one warning, got ${JSON.stringify(warnings)}`);
            assert.match(warnings[0], said(label), `${label}: ${warnings[0]}`);
            if (label.startsWith("disk")) assert.match(warnings[0], new RegExp(`its image ${image} is kept \\(deleteImage\\)`));
        }

        assert.deepEqual(files.map(fileIdentity), filesBefore, "the image the disk created and the ISOs are kept, untouched");
        assert.deepEqual(rigGuests.map(domState), statesBefore, "the rig's guests are all there, in the same state");
    });

    it("any other failure to read the domain is still an error (libvirt unreachable at that URI)", async () => {
        const nic = { ...place(), connection: rigConnection(env, { uri: "qemu+unix:///system?socket=/nonexistent/libvirt-sock" }),
            type: "bridge" as const, source: env.PLL_BRIDGE, mac: "52:54:00:14:0a:01", model: "virtio", linkState: "up" as const,
            attachedLive: true, attachedConfig: true, domainRunning: true };
        await rejectsWith(nics.delete(`x#interface/${nic.mac}`, nic), VirshError, [/cannot read the domain/, /nonexistent/]);
    });
});
