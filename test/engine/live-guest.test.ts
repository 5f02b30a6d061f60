/**
 * Issue 3, tests 1–8: one stack on pll-e2e1 driven through the real engine (Automation API, the
 * source-built CLI, the package installed from its tarball into a scratch program) from v1 to v3,
 * drift, an ISO swap, secrets, a package upgrade and destroy. Every effect is checked with the
 * test's own virsh (rig-env.ts), never with the provider's code.
 *
 * The tests run in order and share the stack, as a user's successive `pulumi up`s would. The
 * secrets and upgrade tests run before destroy, while the stack still holds resources.
 */
import assert from "node:assert/strict";
import { readFileSync } from "fs";
import type * as AutomationModule from "@pulumi/pulumi/automation";
import type { RebootPolicy } from "../../provider/contract";
import {
    configXml, createImage, createIso, currentMemoryKiB, diskBySource, diskByTarget, domState, interfaceByMac, interfacesIn,
    liveXml, maxMemoryKiB, memStats, removeFiles, resetGuestInBackground, RigEnv, rigUp, vcpuCounts, virshLocal, waitFor,
    waitGuestReady,
} from "../rig/rig-env";
import { changed, Consumer, EngineRunError, installConsumer, openTestStack, rigStackConnection, RunResult, TestStack } from "./engine-fixture";
import { guestIdentity, GuestIdentity, resetGuests, startCount } from "./guest-facts";
import { eventLeaks, keyFragments, leaksIn } from "./secret-scan";

const DOMAIN = "pll-e2e1";
const MIB = 1024;
const RESOURCES = "e2e1-resources";
const RAW = "data-raw";
const QCOW2 = "data-qcow2";
const NIC = "nic";
const ISO = "iso";
const STACK = "pll-e2e1-stack";

interface Version {
    memory: string;
    vcpus: number;
    maxMemory?: string;
    rebootPolicy?: RebootPolicy;
    /** v2 on: the two disks, the NIC and the ISO. */
    devices?: { iso: string };
}

/** Balloon `actual` close to `kib` (a guest may stop a page table short). */
async function assertBalloon(kib: number): Promise<void> {
    await waitFor(`${DOMAIN} balloon actual ~${kib} KiB`, () => Math.abs(memStats(DOMAIN).actual - kib) <= MIB,
        { timeoutMs: 20_000, describe: () => JSON.stringify(memStats(DOMAIN)) });
}

function assertSameGuest(before: GuestIdentity, what: string): void {
    assert.deepEqual(guestIdentity(DOMAIN), before, `${what}: the guest restarted (domain id / QEMU pid changed)`);
}

interface StateResource {
    urn: string;
    type: string;
    inputs?: Record<string, unknown>;
    outputs?: Record<string, unknown>;
    pendingReplacement?: boolean;
}

function stateResources(exported: string): Map<string, StateResource> {
    const resources = (JSON.parse(exported) as { deployment: { resources: StateResource[] } }).deployment.resources;
    return new Map(resources.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/libvirt-live:")).map((r) => [r.urn.split("::").pop() ?? r.urn, r]));
}

describe("engine: one stack on a running guest, v1 → v2 → v3, drift, ISO swap, secrets, upgrade, destroy (pll-e2e1)", function () {
    this.timeout(600_000);
    let env: RigEnv;
    let consumer: Consumer;
    let stack: TestStack;
    let key: string;
    const runs: RunResult[] = [];
    const files: string[] = [];
    let rawImage = "";
    let qcowImage = "";
    let iso1 = "";
    let iso2 = "";

    /** The program of one version, written against `sdk` from the consumer's node_modules. */
    const programFor = (c: Consumer, v: Version): AutomationModule.PulumiFn => async () => {
        const sdk = c.load();
        const connection = rigStackConnection(c, env);
        const domain = DOMAIN;
        const resources = new sdk.DomainResources(RESOURCES, {
            connection, domain, memory: v.memory, vcpus: v.vcpus, maxMemory: v.maxMemory, rebootPolicy: v.rebootPolicy, shutdownTimeout: 60,
        });
        const outputs: Record<string, unknown> = {
            pendingReboot: resources.pendingReboot, pendingChanges: resources.pendingChanges, state: resources.state,
        };
        if (v.devices) {
            const raw = new sdk.AttachedDisk(RAW, { connection, domain, source: rawImage, format: "raw", cache: "none", io: "native" });
            const qcow = new sdk.AttachedDisk(QCOW2, { connection, domain, source: qcowImage, format: "qcow2" });
            const nic = new sdk.AttachedInterface(NIC, { connection, domain, type: "bridge", source: env.PLL_BRIDGE });
            const iso = new sdk.AttachedCdrom(ISO, { connection, domain, target: "hdc", source: v.devices.iso });
            Object.assign(outputs, { rawTarget: raw.target, qcowTarget: qcow.target, mac: nic.mac, isoChange: iso.lastMediaChange });
        }
        return outputs;
    };

    let current: Version;
    const use = (v: Version): void => {
        current = v;
        stack.setProgram(programFor(stack.consumer, v));
    };
    const record = async (run: Promise<RunResult>): Promise<RunResult> => {
        try {
            const result = await run;
            runs.push(result);
            return result;
        } catch (error) {
            if (error instanceof EngineRunError) runs.push(error.run);
            throw error;
        }
    };

    const v1: Version = { memory: "256MiB", vcpus: 1 };
    const v2 = (): Version => ({ memory: "384MiB", vcpus: 2, devices: { iso: iso1 } });

    before(async function () {
        env = rigUp();
        key = readFileSync(env.PLL_SSH_KEY, "utf8");
        rawImage = createImage(env, "e2e-raw", "raw");
        qcowImage = createImage(env, "e2e-qcow2", "qcow2");
        iso1 = createIso(env, "e2e-iso1");
        iso2 = createIso(env, "e2e-iso2");
        files.push(rawImage, qcowImage, iso1, iso2);
        const [installed] = await Promise.all([installConsumer(), resetGuests([DOMAIN])]);
        consumer = installed;
        current = v1;
        stack = await openTestStack(consumer, STACK, programFor(consumer, v1));
    });

    after(async function () {
        await stack?.remove();
        removeFiles(files);
        resetGuestInBackground(DOMAIN);
    });

    it("1. v1 adopts the running guest at 256MiB / 1 vCPU without touching it; preview --expect-no-changes passes", async () => {
        const before = guestIdentity(DOMAIN);
        const configBefore = configXml(DOMAIN);
        use(v1);
        const up = await record(stack.up());
        assert.equal(up.summary?.result, "succeeded");
        assert.deepEqual(changed(up), { [RESOURCES]: "create" });
        assert.equal(up.types[RESOURCES], "pulumi-nodejs:dynamic/libvirt-live:DomainResources", "type token");
        // The serialized provider is the package's tiny loader, as the consumer's install built it.
        const serialized = String(stateResources(stack.exportPlain()).get(RESOURCES)?.outputs?.__provider ?? "");
        assert.match(serialized, /require\("pulumi-libvirt-live\/provider"\)/);
        assert.ok(serialized.length < 20_000, `__provider is ${serialized.length} chars`);
        assert.equal(currentMemoryKiB(configXml(DOMAIN)), 256 * MIB, "config memory");
        assert.equal(vcpuCounts(liveXml(DOMAIN)).current, 1, "live vCPUs");
        await assertBalloon(256 * MIB);
        assertSameGuest(before, "v1 up");
        assert.equal(configXml(DOMAIN), configBefore, "the persistent config is byte-for-byte the same");

        const preview = await record(stack.preview({ expectNoChanges: true }));
        assert.deepEqual(changed(preview), {}, "preview after v1 changes nothing");
        assert.deepEqual(Object.keys(preview.changes), ["same"]);
    });

    it("2. v2 (memory 384MiB, 2 vCPUs, raw disk cache=none io=native, qcow2 disk, bridge NIC, ISO in hdc): preview is exactly 1 update + 4 creates, up lands all live, the guest never restarts", async () => {
        const before = guestIdentity(DOMAIN);
        const starts = startCount(DOMAIN);
        use(v2());
        const preview = await record(stack.preview());
        assert.deepEqual(changed(preview), { [RESOURCES]: "update", [RAW]: "create", [QCOW2]: "create", [NIC]: "create", [ISO]: "create" });
        assert.deepEqual(preview.changes, { same: 1, update: 1, create: 4 }, "change summary");
        assert.ok(!Object.values(preview.steps).flat().some((op) => op.includes("replace")), "no replace step");
        assert.deepEqual(preview.replaceKeys, {});
        assert.deepEqual(preview.diffs[RESOURCES], ["memory", "vcpus"], "DomainResources changes exactly memory and vcpus");

        const up = await record(stack.up());
        assert.deepEqual(up.changes, { same: 1, update: 1, create: 4 });
        const live = liveXml(DOMAIN);
        const config = configXml(DOMAIN);
        // memory and vCPUs
        assert.equal(currentMemoryKiB(config), 384 * MIB, "config currentMemory");
        await assertBalloon(384 * MIB);
        assert.equal(vcpuCounts(live).current, 2, "live vCPUs");
        assert.equal(vcpuCounts(config).current, 2, "config vCPUs");
        // disks
        for (const xml of [live, config]) {
            const raw = diskBySource(xml, rawImage);
            assert.ok(raw, `raw disk ${rawImage} attached`);
            assert.deepEqual({ driverType: raw.driverType, cache: raw.cache, io: raw.io, bus: raw.bus }, { driverType: "raw", cache: "none", io: "native", bus: "virtio" });
            assert.equal(raw.target, up.outputs.rawTarget.value, "raw disk target as the output says");
            const qcow = diskBySource(xml, qcowImage);
            assert.ok(qcow, `qcow2 disk ${qcowImage} attached`);
            assert.equal(qcow.driverType, "qcow2");
            assert.equal(qcow.target, up.outputs.qcowTarget.value);
            assert.notEqual(raw.target, qcow.target);
            // NIC
            const mac = String(up.outputs.mac.value);
            const nic = interfaceByMac(xml, mac);
            assert.ok(nic, `NIC ${mac} attached`);
            assert.deepEqual({ type: nic.type, bridge: nic.bridge, model: nic.model }, { type: "bridge", bridge: env.PLL_BRIDGE, model: "virtio" });
            // ISO
            const cdrom = diskByTarget(xml, "hdc");
            assert.equal(cdrom?.device, "cdrom");
            assert.equal(cdrom?.source, iso1, "ISO in hdc");
        }
        assertSameGuest(before, "v2 up");
        assert.equal(startCount(DOMAIN), starts, "libvirt did not start QEMU again");
    });

    it("3a. v3 (vCPUs 2→1, maxMemory 512→768MiB): preview marks DomainResources replace on exactly [maxMemory, vcpus], devices unchanged", async () => {
        use({ ...v2(), vcpus: 1, maxMemory: "768MiB", rebootPolicy: "never" });
        const preview = await record(stack.preview());
        assert.deepEqual(changed(preview), { [RESOURCES]: "replace" });
        assert.deepEqual([...(preview.replaceKeys[RESOURCES] ?? [])].sort(), ["maxMemory", "vcpus"]);
        assert.deepEqual(preview.diffs[RESOURCES], ["maxMemory", "rebootPolicy", "vcpus"], "changed inputs");
        assert.equal(preview.changes.replace, 1, `change summary ${JSON.stringify(preview.changes)}`);
    });

    it("3b. v3 with rebootPolicy \"never\": up fails naming vcpus and maxMemory, nothing changed on the guest, the engine deleted nothing", async () => {
        const before = guestIdentity(DOMAIN);
        const configBefore = configXml(DOMAIN);
        use({ ...v2(), vcpus: 1, maxMemory: "768MiB", rebootPolicy: "never" });
        let failure: EngineRunError | undefined;
        try {
            await record(stack.up());
        } catch (error) {
            if (!(error instanceof EngineRunError)) throw error;
            failure = error;
        }
        assert.ok(failure, "up must fail");
        assert.match(failure.run.log, /vcpus: 2 → 1/);
        assert.match(failure.run.log, /maxMemory: 512MiB → 768MiB/);
        assert.match(failure.run.log, /rebootPolicy is "never"/);
        assert.match(failure.run.log, /Nothing was changed/);
        assert.match(failure.run.log, new RegExp(DOMAIN), "the error names the domain");
        assertSameGuest(before, "refused up");
        const config = configXml(DOMAIN);
        assert.equal(maxMemoryKiB(config), 512 * MIB, "config maxMemory unchanged");
        assert.equal(vcpuCounts(config).current, 2, "config vCPUs unchanged");
        assert.equal(vcpuCounts(liveXml(DOMAIN)).current, 2, "live vCPUs unchanged");
        assert.equal(config, configBefore, "persistent config untouched");
        // Create-before-delete: the engine deleted nothing and holds the resource as it was.
        assert.deepEqual((failure.run.steps[RESOURCES] ?? []).filter((op) => op.startsWith("delete")), [], "no delete step");
        const held = stateResources(stack.exportPlain()).get(RESOURCES);
        assert.ok(held, "the stack still holds the DomainResources");
        assert.notEqual(held.pendingReplacement, true, "not left pending replacement");
    });

    it("3c. v3 with rebootPolicy \"ifRequired\": up restarts the guest exactly once and 1 vCPU / 768MiB max hold live and in config; devices survive", async () => {
        const before = guestIdentity(DOMAIN);
        const starts = startCount(DOMAIN);
        use({ ...v2(), vcpus: 1, maxMemory: "768MiB", rebootPolicy: "ifRequired" });
        const up = await record(stack.up());
        assert.equal(changed(up)[RESOURCES], "replace", `ops ${JSON.stringify(up.ops)}`);
        assert.equal(startCount(DOMAIN), starts + 1, "QEMU started exactly once more");
        assert.notEqual(guestIdentity(DOMAIN).id, before.id, "a new domain id after the restart");
        assert.equal(domState(DOMAIN), "running");
        for (const xml of [liveXml(DOMAIN), configXml(DOMAIN)]) {
            assert.equal(vcpuCounts(xml).current, 1, "vCPUs");
            assert.equal(maxMemoryKiB(xml), 768 * MIB, "maxMemory");
            assert.ok(diskBySource(xml, rawImage) && diskBySource(xml, qcowImage), "both disks still attached");
            assert.equal(interfacesIn(xml).length, 1, "the NIC is still there");
            assert.equal(diskByTarget(xml, "hdc")?.source, iso1, "the ISO is still in hdc");
        }
        assert.equal(up.outputs.pendingReboot.value, false);
        await waitGuestReady(env, DOMAIN);
        await assertBalloon(384 * MIB);
    });

    it("3d. v3 again (vCPUs 2→1, maxMemory 768MiB→1GiB) with rebootPolicy \"configOnly\": live values stay, the config has the new ones, outputs say pendingReboot", async () => {
        // Back to 2 vCPUs first (a live increase), so there is a decrease to make.
        use({ ...v2(), vcpus: 2, maxMemory: "768MiB", rebootPolicy: "configOnly" });
        const raise = await record(stack.up());
        assert.equal(changed(raise)[RESOURCES], "update");
        assert.equal(vcpuCounts(liveXml(DOMAIN)).current, 2, "live vCPUs raised");
        const before = guestIdentity(DOMAIN);

        use({ ...v2(), vcpus: 1, maxMemory: "1GiB", rebootPolicy: "configOnly" });
        const up = await record(stack.up());
        assert.equal(changed(up)[RESOURCES], "replace");
        assertSameGuest(before, "configOnly up");
        const live = liveXml(DOMAIN);
        const config = configXml(DOMAIN);
        assert.deepEqual({ vcpus: vcpuCounts(live).current, maxMemory: maxMemoryKiB(live) }, { vcpus: 2, maxMemory: 768 * MIB }, "live values stay");
        assert.deepEqual({ vcpus: vcpuCounts(config).current, maxMemory: maxMemoryKiB(config) }, { vcpus: 1, maxMemory: 1024 * MIB }, "config has the new values");
        assert.equal(up.outputs.pendingReboot.value, true, "outputs.pendingReboot");
        const pending = (up.outputs.pendingChanges.value as string[]).join("\n");
        assert.match(pending, /maxMemory/);
        assert.match(pending, /vcpus/);
        await record(stack.preview({ expectNoChanges: true }));
    });

    it("4. drift: NIC detached and memory set to 320MiB by hand; refresh records both; the next up re-attaches a NIC and restores 384MiB", async () => {
        const mac = String(interfacesIn(configXml(DOMAIN))[0]?.mac);
        virshLocal(["detach-interface", DOMAIN, "bridge", "--mac", mac, "--live", "--config"]);
        await waitFor(`NIC ${mac} gone`, () => interfaceByMac(liveXml(DOMAIN), mac) === undefined);
        virshLocal(["setmem", DOMAIN, "320M", "--live", "--config"]);
        await assertBalloon(320 * MIB);

        const refresh = await record(stack.refresh());
        assert.equal(refresh.ops[NIC], "delete", `refresh ops ${JSON.stringify(refresh.ops)}`);
        assert.equal(refresh.ops[RESOURCES], "update", `refresh ops ${JSON.stringify(refresh.ops)}`);
        assert.deepEqual(refresh.changes, { same: 4, update: 1, delete: 1 }, "refresh summary");
        const state = stateResources(stack.exportPlain());
        assert.equal(state.has(NIC), false, "the NIC is gone from the state");
        assert.equal(state.get(RESOURCES)?.outputs?.memory, "320MiB", "the state records the hand-set memory");

        const before = guestIdentity(DOMAIN);
        const up = await record(stack.up());
        assert.deepEqual(changed(up), { [RESOURCES]: "update", [NIC]: "create" });
        for (const xml of [liveXml(DOMAIN), configXml(DOMAIN)]) {
            const nics = interfacesIn(xml);
            assert.equal(nics.length, 1, "one NIC again");
            assert.equal(nics[0].bridge, env.PLL_BRIDGE);
        }
        assert.equal(currentMemoryKiB(configXml(DOMAIN)), 384 * MIB, "config memory restored");
        await assertBalloon(384 * MIB);
        assertSameGuest(before, "drift repair");
    });

    it("5. ISO swap: a new ISO path is an in-place update of AttachedCdrom, the media in hdc is swapped live and in config", async () => {
        const before = guestIdentity(DOMAIN);
        use({ ...current, devices: { iso: iso2 } });
        const preview = await record(stack.preview());
        assert.deepEqual(changed(preview), { [ISO]: "update" });
        assert.deepEqual(preview.diffs[ISO], ["source"]);
        assert.deepEqual(preview.replaceKeys, {});
        const up = await record(stack.up());
        assert.deepEqual(changed(up), { [ISO]: "update" });
        assert.equal(up.outputs.isoChange.value, "swapped");
        assert.equal(diskByTarget(liveXml(DOMAIN), "hdc")?.source, iso2, "live hdc");
        assert.equal(diskByTarget(configXml(DOMAIN), "hdc")?.source, iso2, "config hdc");
        assertSameGuest(before, "ISO swap");
    });

    it("7. secrets: the private key given as pulumi.secret(…) is in no plain `pulumi stack export`, no state file, no CLI output and no engine event but @pulumi/pulumi's own RPC debug lines", async () => {
        const fragments = keyFragments(key);
        const exported = stack.exportPlain();
        assert.deepEqual(leaksIn(exported, fragments), [], "plain stack export");
        const resources = [...stateResources(exported).values()];
        assert.equal(resources.length, 5, "five managed resources");
        for (const r of resources) {
            for (const [where, props] of [["inputs", r.inputs], ["outputs", r.outputs]] as const) {
                const connection = props?.connection as Record<string, unknown> | undefined;
                assert.ok(connection && "ciphertext" in connection, `${r.type} ${where}.connection is encrypted`);
            }
        }
        const stateFile = readFileSync(stack.statePath, "utf8");
        assert.deepEqual(leaksIn(stateFile, fragments), [], "state file on disk");
        assert.ok(runs.length >= 10, `runs recorded: ${runs.length}`);
        assert.ok(runs.some((r) => r.failed.length > 0), "a failed run (3b) is among those scanned");
        let runtimeDebug = 0;
        for (const run of runs) {
            assert.deepEqual(leaksIn(run.log, fragments), [], `${run.kind} CLI output`);
            const leaks = eventLeaks(run.events, fragments);
            assert.deepEqual(leaks.others, [], `${run.kind} engine events`);
            runtimeDebug += leaks.runtimeDebug;
        }
        // Upstream, not ours: see secret-scan.ts. With the key from secret stack config the engine masks it (secrets-config.test.ts).
        console.log(`      note: ${runtimeDebug} debug-severity "RegisterResource RPC finished" events from @pulumi/pulumi's runtime carry the pulumi.secret key in plaintext`);
    });

    it("8. upgrading the package (a second packed version whose serialized provider differs) previews with --expect-no-changes, and up is all same", async () => {
        const [major, minor, patch] = consumer.version.split(/[.-]/).map(Number);
        const upgraded = await installConsumer({ version: `${major}.${minor}.${patch + 1}`, tag: "e2e upgrade: harmless change" });
        assert.notEqual(upgraded.version, consumer.version);
        const tag = /e2e upgrade: harmless change/;
        assert.doesNotMatch(stack.exportPlain(), tag, "the state holds the first version's provider");
        const before = guestIdentity(DOMAIN);
        const configBefore = configXml(DOMAIN);
        stack = await stack.withConsumer(upgraded);
        use(current);
        const preview = await record(stack.preview({ expectNoChanges: true }));
        assert.deepEqual(changed(preview), {});
        const up = await record(stack.up());
        assert.deepEqual(Object.keys(up.changes), ["same"]);
        assert.match(stack.exportPlain(), tag, "the state now holds the upgraded provider");
        assertSameGuest(before, "upgrade");
        assert.equal(configXml(DOMAIN), configBefore, "the persistent config is byte-for-byte the same");
    });

    it("6. destroy detaches both disks and the NIC (live and config), ejects the ISO, and leaves the guest running", async () => {
        const before = guestIdentity(DOMAIN);
        const destroy = await record(stack.destroy());
        assert.equal(destroy.summary?.result, "succeeded");
        assert.deepEqual(changed(destroy), { [RESOURCES]: "delete", [RAW]: "delete", [QCOW2]: "delete", [NIC]: "delete", [ISO]: "delete" });
        for (const xml of [liveXml(DOMAIN), configXml(DOMAIN)]) {
            assert.equal(diskBySource(xml, rawImage), undefined, "raw disk detached");
            assert.equal(diskBySource(xml, qcowImage), undefined, "qcow2 disk detached");
            assert.deepEqual(interfacesIn(xml), [], "no NIC");
            const hdc = diskByTarget(xml, "hdc");
            assert.equal(hdc?.device, "cdrom", "the IDE drive itself stays");
            assert.equal(hdc?.source, undefined, "ISO ejected");
        }
        assert.equal(domState(DOMAIN), "running");
        assertSameGuest(before, "destroy");
    });
});
