/**
 * DomainResources does nothing the user did not see coming (issue 14), on domains of its own: copies
 * of pll-grow1's config under new names (pll-t14-dr-*), each with its own console log, undefined in
 * `after`. Adding a virtio-mem device keeps the rest of the config byte for byte (a console password,
 * a multi-line description, the changes other members of the same batch make); a shut-off domain
 * takes it with no reboot; an update never does more than the preview showed (a domain started by
 * hand since the last read, a guest agent gone since): it refuses, and names the refresh that shows it.
 */
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DomainResourcesInputs, DomainResourcesOutputs } from "../../provider/contract";
import { InputError } from "../../provider/index";
import { GROW1, qemuPid } from "./grow-env";
import {
    configXml, createImage, currentMemoryKiB, domId, domState, liveXml, rejectsWith, removeFiles, RigEnv, rigConnection, rigUp, typedProviders, virshLocal,
    virshLocalResult, waitFor, waitGuestReady,
} from "./rig-env";

/** libvirt takes at most 8 characters for a VNC password. */
const SECRET = "s3cr3tpw";
/** As libvirt writes it back (its own escaping), so the config compares with it byte for byte. */
const DESCRIPTION = "<description>first line of the description\n  second line, indented\nthird line: &lt;keep&gt; &amp; &apos;quotes&apos;</description>";

/** `dumpxml --inactive --security-info`: the config as libvirt keeps it, the console password included. */
const secureConfig = (domain: string) => virshLocal(["dumpxml", "--inactive", "--security-info", domain]);

function undefineCopy(env: RigEnv, name: string): void {
    const state = virshLocalResult(["domstate", name]);
    if (state.status === 0) {
        if (state.stdout.trim() !== "shut off") virshLocalResult(["destroy", name]);
        virshLocal(["undefine", name]);
    }
    rmSync(join(env.PLL_RIG_DIR, `console-${name}.log`), { force: true });
}

/**
 * pll-grow1's persistent config under `name`: no <uuid>, its own console log, a VNC console with a
 * password and a three-line description; `edit` changes it further. Defined, not started.
 */
function defineCopy(env: RigEnv, name: string, edit: (xml: string) => string = (x) => x): void {
    undefineCopy(env, name);
    const source = configXml(GROW1);
    assert.ok(!/<maxMemory|<numa>|model='virtio-mem'/.test(source), `${GROW1}'s config already has memory hot-plug: rig/reset-guest.sh ${GROW1}`);
    const xml = edit(source
        .replace(`<name>${GROW1}</name>`, `<name>${name}</name>`)
        .replace(/^\s*<uuid>.*<\/uuid>\n/m, "")
        .replace(/<description>[\s\S]*?<\/description>/, DESCRIPTION)
        .replaceAll(`console-${GROW1}.log`, `console-${name}.log`)
        .replace("</devices>", `  <graphics type='vnc' port='-1' autoport='yes' passwd='${SECRET}'/>\n  </devices>`));
    const path = join(tmpdir(), `pll-t14-dr-${process.pid}-${Date.now()}.xml`);
    writeFileSync(path, xml);
    try {
        virshLocal(["define", `--file=${path}`]);
    } finally {
        rmSync(path, { force: true });
    }
}

/** The elements a hotplugMemory define names (and libvirt's sizes that follow from them), taken out. */
function outsideTheChange(xml: string): string {
    return xml
        .replace(/^ *<maxMemory\b.*\n/m, "")
        .replace(/^ *<memory unit='KiB'>\d+<\/memory>\n/m, "")
        .replace(/^ *<numa>\n[\s\S]*?<\/numa>\n/m, "")
        .replace(/^ *<memory model='virtio-mem'>\n[\s\S]*?^ *<\/memory>\n/m, "");
}

/** The <disk> of `target` in a domain XML, as libvirt formats it (indented block). */
function diskBlock(xml: string, target: string): string | undefined {
    return [...xml.matchAll(/^ *<disk [\s\S]*?^ *<\/disk>\n/gm)].map((m) => m[0]).find((b) => b.includes(`<target dev='${target}'`));
}

describe("rig: DomainResources keeps the config and never does more than the preview showed (own copies of pll-grow1)", function () {
    this.timeout(300_000);
    const { disks, resources } = typedProviders();
    const OFF = "pll-t14-dr-off";
    const OFF_NEVER = "pll-t14-dr-never";
    const RUN = "pll-t14-dr-run";
    let env: RigEnv;
    const images: string[] = [];

    before(function () {
        env = rigUp();
    });

    after(function () {
        for (const name of [OFF, OFF_NEVER, RUN]) undefineCopy(env, name);
        removeFiles(images);
    });

    it("hotplugMemory in a batch that also changes the config: password, description and the other members' changes stay, byte for byte", async () => {
        defineCopy(env, OFF);
        const connection = rigConnection(env);
        const [a, b] = [createImage(env, "t14-dr-a"), createImage(env, "t14-dr-b")];
        images.push(a, b);
        const diskA = await disks.create({ connection, domain: OFF, source: a, target: "vdb" });
        const before = secureConfig(OFF);
        assert.ok(before.includes(`passwd='${SECRET}'`) && before.includes(DESCRIPTION) && diskBlock(before, "vdb"), `the copy as defined:\n${before}`);
        // As the engine does: the members of one update arrive together and form one batch. The detach
        // (a removal) runs before the define in the same exec; the attach (an addition) after it.
        const [removed, added, hotplug] = await Promise.allSettled([
            disks.delete(diskA.id, diskA.outs),
            disks.create({ connection, domain: OFF, source: b, target: "vdc" }),
            resources.create({ connection, domain: OFF, hotplugMemory: "1GiB", rebootPolicy: "configOnly" }),
        ]);
        const after = secureConfig(OFF);
        const outcomes: Array<[string, PromiseSettledResult<unknown>]> = [["the detach of vdb", removed], ["the attach of vdc", added], ["hotplugMemory", hotplug]];
        const problems = [
            ...outcomes.flatMap(([what, r]) => (r.status === "rejected" ? [`${what} failed: ${String(r.reason)}`] : [])),
            ...(after.includes(`passwd='${SECRET}'`) ? [] : ["the console password is gone from the config"]),
            ...(after.includes(DESCRIPTION) ? [] : [`the description changed: ${/<description>[\s\S]*?<\/description>/.exec(after)?.[0]}`]),
            ...(diskBlock(after, "vdb") ? ["vdb, detached by another member of the batch, is back in the config"] : []),
            ...(diskBlock(after, "vdc") ? [] : ["vdc, attached by another member of the batch, is gone from the config"]),
            ...(/<memory model='virtio-mem'>/.test(after) ? [] : ["no virtio-mem device in the config"]),
            ...(outcomes.some(([, r]) => (r.status === "fulfilled" ? String(JSON.stringify(r.value)) : String(r.reason)).includes(SECRET))
                ? ["the console password is in an output or an error"] : []),
        ];
        assert.deepEqual(problems, []);
        const vdc = diskBlock(after, "vdc") ?? "";
        const vdb = diskBlock(before, "vdb") ?? "";
        assert.equal(outsideTheChange(after).replace(vdc, ""), outsideTheChange(before).replace(vdb, ""),
            "outside <maxMemory>, <memory>, the NUMA cell, the virtio-mem device and the two disks, the config is byte-identical");
        assert.match(after, /<maxMemory slots='1' unit='KiB'>1572864<\/maxMemory>/);
        assert.equal(domState(OFF), "shut off");
    });

    it("hotplugMemory on a shut-off domain with rebootPolicy left at \"never\": in the config, no error, still shut off", async () => {
        defineCopy(env, OFF_NEVER);
        const before = secureConfig(OFF_NEVER);
        const { outs } = await resources.create({ connection: rigConnection(env), domain: OFF_NEVER, memory: "256MiB", hotplugMemory: "1GiB" });
        const after = secureConfig(OFF_NEVER);
        assert.match(after, /<memory model='virtio-mem'>/);
        assert.equal(outsideTheChange(after), outsideTheChange(before), "nothing else changed");
        assert.equal(domState(OFF_NEVER), "shut off");
        assert.equal(outs.state, "shut off");
        assert.equal(outs.hotplugSizeKiB, 1024 * 1024);
        assert.equal(outs.pendingReboot, false);
    });

    describe("an update on a domain whose state changed since the last read (pll-t14-dr-run, started by hand)", () => {
        let connection: DomainResourcesInputs["connection"];
        const base = (): DomainResourcesInputs => ({ connection, domain: RUN, memory: "256MiB", forceOff: true, shutdownTimeout: 30, balloonTimeout: 5 });
        /** The running domain as the test sees it, to prove nothing moved. */
        const fingerprint = () => ({ id: domId(RUN), pid: qemuPid(RUN), live: liveXml(RUN), config: secureConfig(RUN) });

        before(function () {
            connection = rigConnection(env);
            // Started below: two vCPUs to take one away; no VNC console (it would listen once started).
            defineCopy(env, RUN, (xml) => xml.replace("<vcpu placement='static' current='1'>4</vcpu>", "<vcpu placement='static' current='2'>4</vcpu>")
                .replace(/\s*<graphics type='vnc'[^>]*\/>/, ""));
        });

        it("read while shut off, started by hand, memory above the maximum with ifRequired: the preview shows an update, and the update refuses with the refresh hint", async () => {
            const { id, outs } = await resources.create({ ...base(), rebootPolicy: "ifRequired" });
            assert.equal(outs.state, "shut off");
            virshLocal(["start", RUN]);
            await waitFor(`${RUN} running`, () => domState(RUN) === "running");
            const news: DomainResourcesInputs = { ...base(), memory: "768MiB", rebootPolicy: "ifRequired" };
            const diff = await resources.diff(id, outs, news);
            assert.deepEqual([diff.changes, diff.replaces], [true, []], "from the stored state (shut off): an in-place update");
            const seen = fingerprint();
            await rejectsWith(resources.update(id, outs, news), InputError, [
                /memory: the preview showed config; with the domain running now it is reboot \(above the current maximum\)/,
                /Nothing was changed/, /pulumi preview --refresh/, /pulumi up --refresh/, new RegExp(`domain '${RUN}'`)]);
            assert.deepEqual(fingerprint(), seen, "same domain id and QEMU process; live and config XML byte-identical");
            // The refresh the message names: the preview then shows the reboot (a replacement).
            const refreshed = await resources.read(id, outs);
            assert.deepEqual((await resources.diff(id, refreshed.props as DomainResourcesOutputs, news)).replaces, ["memory"]);
        });

        it("vCPUs down, previewed live because the agent answered at the last read, no agent now: refused, not rebooted", async () => {
            // Started by hand in the test before, which waited only for "running": at rest first (booted, the
            // balloon at its size), or the live XML moves under the fingerprint by itself.
            await waitGuestReady(env, RUN, 120_000);
            await waitFor(`${RUN}'s balloon at its configured size`, () => currentMemoryKiB(liveXml(RUN)) === currentMemoryKiB(configXml(RUN)), { timeoutMs: 60_000, intervalMs: 250 });
            const { id, outs } = await resources.create({ ...base(), vcpus: 2 });
            assert.equal(outs.guestAgent, false, "this guest has no agent");
            const stored: DomainResourcesOutputs = { ...outs, guestAgent: true, guestVcpus: 2 };
            const news: DomainResourcesInputs = { ...base(), vcpus: 1, rebootPolicy: "ifRequired" };
            const diff = await resources.diff(id, stored, news);
            assert.deepEqual([diff.changes, diff.replaces], [true, []], "with the agent at the last read: live, an in-place update");
            const seen = fingerprint();
            await rejectsWith(resources.update(id, stored, news), InputError, [
                /vcpus: the preview showed live; with the domain running now it is reboot \(down without the guest agent/, /Nothing was changed/, /pulumi preview --refresh/]);
            assert.deepEqual(fingerprint(), seen, "same domain id and QEMU process; live and config XML byte-identical");
        });
    });
});
