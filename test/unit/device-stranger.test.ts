/**
 * The pure part of "a device put at a resource's target is never touched": which half holds another
 * device, what the refusal says and which `virsh detach-disk` halves its fix names. The rig test
 * (test/rig/stranger-at-target) shows the same on libvirt, for a device in both halves.
 */
import assert from "node:assert/strict";
import { InputError } from "../../provider/errors";
import { CDROM_DRIVE, diskOn, refuseStranger } from "../../provider/providers/device-stranger";
import type { DomainSnapshot } from "../../provider/virsh/domain-snapshot";
import { Virsh } from "../../provider/virsh/virsh";
import type { DiskValues } from "../../provider/xml/disk-xml";

const virsh = new Virsh({ label: "hv1" } as never, "qemu:///system", "g", false, 30);
const ours: DiskValues = { device: "disk", target: "vdb", file: "/img/ours.raw" };
const theirs: DiskValues = { device: "disk", target: "vdb", file: "/img/theirs.raw" };
const cdrom: DiskValues = { device: "cdrom", target: "vdb", file: "/iso/tools.iso" };

function domainWith(live: DiskValues[] | undefined, config: DiskValues[]): DomainSnapshot {
    return { running: live !== undefined, live: live && { disks: live }, config: { disks: config } } as unknown as DomainSnapshot;
}

function refusal(snapshot: DomainSnapshot, owner = diskOn(ours.file as string)): InputError | undefined {
    try {
        refuseStranger(virsh, snapshot, "vdb", owner);
        return undefined;
    } catch (error) {
        assert.ok(error instanceof InputError, `not an InputError: ${String(error)}`);
        return error;
    }
}

describe("a device at a resource's target that is not its own", () => {
    it("ours in both halves, or in one half and nothing in the other (a half removed by hand): no refusal", () => {
        assert.equal(refusal(domainWith([ours], [ours])), undefined);
        assert.equal(refusal(domainWith([ours], [])), undefined);
        assert.equal(refusal(domainWith(undefined, [ours])), undefined, "shut off, config only");
        assert.equal(refusal(domainWith([], [])), undefined, "gone from both: not a stranger, the caller says it is gone");
    });

    it("halves that disagree (live on ours, config on another file): refused, naming only the config half and its detach", () => {
        const error = refusal(domainWith([ours], [theirs]));
        assert.ok(error);
        assert.match(error.message, /target vdb of domain 'g' holds a disk \(\/img\/theirs\.raw\) in the persistent config, not this resource's disk \/img\/ours\.raw/);
        assert.match(error.message, /a half a failed change left behind/);
        assert.match(error.message, /virsh detach-disk g vdb --config\)/);
        assert.doesNotMatch(error.message, /--live/);
        assert.match(error.message, /\(host hv1, domain 'g', device disk vdb\)\nFix: /, "the host, domain and device, then the fix");
    });

    it("another file in both halves: both named, one detach for both", () => {
        const error = refusal(domainWith([theirs], [theirs]));
        assert.ok(error);
        assert.match(error.message, /in the live XML and the persistent config, not this resource's disk/);
        assert.match(error.message, /virsh detach-disk g vdb --live --config\)/);
    });

    it("a CD-ROM drive at a disk's target is not the disk; a data disk at a drive's target is not the drive", () => {
        assert.match(refusal(domainWith([cdrom], [cdrom]))?.message ?? "", /holds a cdrom \(\/iso\/tools\.iso\)/);
        assert.equal(refusal(domainWith([cdrom], [cdrom]), CDROM_DRIVE), undefined, "any CD-ROM drive is the drive (its media is what changes)");
        assert.match(refusal(domainWith([cdrom], [ours]), CDROM_DRIVE)?.message ?? "", /holds a disk \(\/img\/ours\.raw\) in the persistent config, not a CD-ROM drive/);
    });

    it("a disk whose XML names no device kind is a data disk (libvirt's default)", () => {
        const { device: _kind, ...unnamed } = ours;
        assert.equal(refusal(domainWith([unnamed], [unnamed])), undefined);
    });
});
