/**
 * A test run cut off mid-test (a session that ends, CI on the same machine) kills QEMU and leaves
 * libvirt's persistent config as the test made it: memory and vCPUs set with --config, a disk
 * attached to the config, the config file immutable from the config-write fault. rig/up.sh must
 * then start the guest from the rig's own definition, or the next run's baseline checks fail
 * (CI once failed on a guest whose persistent currentMemory a cut-off test had left at 320 MiB).
 * Injected here on pll-noos, the guest with nothing else running on it.
 */
import assert from "node:assert/strict";
import { execFileSync } from "child_process";
import {
    blockList, configXml, createImage, currentMemoryKiB, domState, NOOS, removeFiles, resetGuest, resetGuestInBackground, RigEnv, rigRestore, rigUp, vcpuCounts,
    virshLocal,
} from "../rig/rig-env";
import { setConfigWritable } from "./fault-env";

const BASE_MEMORY_KIB = 262144;

function isImmutable(domain: string): boolean {
    const flags = execFileSync("lsattr", [`/etc/libvirt/qemu/${domain}.xml`], { encoding: "utf8" }).split(" ")[0];
    return flags.includes("i");
}

describe("faults: a run cut off mid-test leaves persistent changes behind; rig/up.sh starts from the rig's definition", function () {
    this.timeout(300_000);
    let env: RigEnv;
    const images: string[] = [];

    before(function () {
        env = rigUp();
        resetGuest(NOOS);
    });

    after(function () {
        if (isImmutable(NOOS)) setConfigWritable(NOOS, true);
        resetGuestInBackground(NOOS);
        removeFiles(images);
    });

    it("setmem/setvcpus/attach-disk --config, an immutable config file and a killed QEMU: up.sh restores the baseline", () => {
        const image = createImage(env, "cut-off");
        images.push(image);
        virshLocal(["setmem", NOOS, "320M", "--config"]);
        virshLocal(["setvcpus", NOOS, "2", "--config"]);
        virshLocal(["attach-disk", NOOS, image, "vdz", "--config"]);
        const left = configXml(NOOS);
        assert.equal(currentMemoryKiB(left), 320 * 1024, "the injected memory is in the config");
        assert.equal(vcpuCounts(left).current, 2, "the injected vCPUs are in the config");
        assert.ok(blockList(NOOS, true).some((disk) => disk.source === image), "the injected disk is in the config");
        setConfigWritable(NOOS, false);
        virshLocal(["destroy", NOOS]);
        assert.equal(domState(NOOS), "shut off");

        rigRestore([NOOS]);

        assert.equal(domState(NOOS), "running");
        assert.equal(isImmutable(NOOS), false, "up.sh cleared the immutable flag");
        const restored = configXml(NOOS);
        assert.equal(currentMemoryKiB(restored), BASE_MEMORY_KIB);
        assert.equal(vcpuCounts(restored).current, 1);
        assert.equal(blockList(NOOS, true).some((disk) => disk.source === image), false, "the injected disk is gone from the config");
        assert.equal(blockList(NOOS).some((disk) => disk.source === image), false, "and from the running domain");
    });
});
