/**
 * Issue 14: a hot-plugged SCSI CD-ROM drive refuses change-media ("Tray … is not open"), so a new
 * ISO is put in by detaching the drive and attaching it anew. When that attach fails (the new ISO
 * vanished under the change: libvirt's own refusal), the old drive comes back with its old media,
 * and the error says so; when that fails too (the old ISO gone as well), it says plainly that the
 * drive is no longer on the domain and how to get it back. pll-fault2, through our own sshd on
 * 127.0.0.1:2231, whose virsh double only delays change-media so the ISOs can vanish meanwhile.
 * And a drive's create whose config write fails (config file immutable) detaches the live half
 * again: a rerun would choose the next free target and leave it behind.
 */
import assert from "node:assert/strict";
import { rmSync } from "fs";
import type { AttachedCdromInputs } from "../../provider/contract";
import { VirshError } from "../../provider/index";
import { configXml, createIso, disksIn, liveXml, rejectsWith, removeFiles, resetGuest, typedProviders, waitFor } from "../rig/rig-env";
import { attachFailureRig, GUEST, PORT } from "./attach-failure-env";
import { setConfigWritable } from "./fault-env";


/** The guest's CD-ROM drives, live and config, as "target bus media". */
function drivesOf(): { live: string[]; config: string[] } {
    const list = (xml: string) => disksIn(xml).filter((d) => d.device === "cdrom" && d.bus !== "ide").map((d) => `${d.target} ${d.bus} ${d.source ?? "empty"}`);
    return { live: list(liveXml(GUEST)), config: list(configXml(GUEST)) };
}

describe(`faults: a CD-ROM re-plug that fails (${GUEST}, own sshd on 127.0.0.1:${PORT})`, function () {
    this.timeout(240_000);
    const { cdroms } = typedProviders();
    const rig = attachFailureRig();
    const files: string[] = [];
    const inputs = (source: string): AttachedCdromInputs => ({ connection: rig.sshd().connection(), domain: GUEST, source });

    afterEach(() => rig.sshd().clearRules());

    after(() => removeFiles(files));

    it("create, config write fails after the drive went live: the live drive is detached again, the rerun leaves one drive", async () => {
        const iso = createIso(rig.env(), "replug-create");
        files.push(iso);
        setConfigWritable(GUEST, false);
        try {
            await rejectsWith(cdroms.create(inputs(iso)), VirshError, [
                /virsh attach-device failed \(exit 1\); the part of cdrom sd[a-z]+ that landed \(live\) was detached again: nothing is left behind/,
                /cannot rename file '\/etc\/libvirt\/qemu\/pll-fault2\.xml\.new'/,
            ]);
        } finally {
            setConfigWritable(GUEST, true);
        }
        assert.deepEqual(drivesOf(), { live: [], config: [] }, "no drive left behind");
        const { id, outs } = await cdroms.create(inputs(iso));
        const drive = `${outs.target} scsi ${iso}`;
        assert.deepEqual(drivesOf(), { live: [drive], config: [drive] }, "the rerun: one drive, in both halves");
        await cdroms.delete(id, outs);
    });

    /** A drive holding iso1, asked for iso2 while the ISOs in `vanish` disappear under the change-media. */
    async function swapWhileIsosVanish(vanish: Array<"old" | "new">): Promise<{ error: VirshError; target: string; old: string }> {
        const [old, next] = [createIso(rig.env(), "replug-old"), createIso(rig.env(), "replug-new")];
        files.push(old, next);
        const { id, outs } = await cdroms.create(inputs(old));
        assert.equal(outs.ownsDrive, true);
        const sshd = rig.sshd();
        sshd.clearCalls();
        sshd.rule("change-media", "before", "3");
        const swapping = rejectsWith(cdroms.update(id, outs, inputs(next)), VirshError);
        await waitFor("change-media to start", () => sshd.calls().includes("change-media start"), { timeoutMs: 30_000 });
        for (const which of vanish) rmSync(which === "old" ? old : next);
        const error = await swapping;
        assert.ok(sshd.calls().includes("change-media ran 1"), `change-media refused: ${sshd.calls().join(", ")}`);
        return { error, target: outs.target, old };
    }

    it("the attach with the new ISO fails: the drive is back with the old media, and the error says so", async () => {
        const { error, target, old } = await swapWhileIsosVanish(["new"]);
        assert.match(error.message, new RegExp(`cdrom ${target} was put back with ${old}: the domain has it as before this update`));
        const drive = `${target} scsi ${old}`;
        assert.deepEqual(drivesOf(), { live: [drive], config: [drive] }, "the old drive and media, in both halves");
    });

    it("putting the old drive back fails too: the error says the drive is no longer on the domain and how to get it back", async () => {
        resetGuest(GUEST);
        const { error, target, old } = await swapWhileIsosVanish(["new", "old"]);
        assert.match(error.message, new RegExp(`cdrom ${target} is no longer on the domain: it was detached to be attached anew, and putting it back with ${old} failed too`));
        assert.match(error.message, new RegExp(`Fix: run pulumi up again .*virsh attach-disk pll-fault2 ${old} ${target} --type cdrom --targetbus scsi --mode readonly --live --config`));
        assert.deepEqual(drivesOf(), { live: [], config: [] }, "as said: the drive is gone");
    });
});
