/**
 * One `pulumi up` (engine parallelism 16, PULUMI_PARALLEL) with 40 devices across pll-fault2..4:
 * per guest 11 disks and 2 NICs, plus an ISO in pll-fault2's IDE CD-ROM. Everything lands once
 * (dumpxml, the test's own channel), no lock error leaks to the user (the engine log), refresh
 * finds no drift, preview --expect-no-changes passes, destroy leaves the guests as they were.
 * Long-ish (resets and several engine runs): PLL_SKIP_LONG=1 skips it.
 */
import assert from "node:assert/strict";
import type * as AutomationModule from "@pulumi/pulumi/automation";
import {
    configXml, createImage, createIso, diskBySource, diskByTarget, disksIn, interfacesIn, liveXml, removeFiles,
    resetGuestInBackground, RigEnv, rigUp,
} from "../rig/rig-env";
import { Consumer, installConsumer, openTestStack, RunResult, rigStackConnection, TestStack } from "../engine/engine-fixture";
import { resetGuests } from "../engine/guest-facts";
import { FAULT_GUESTS, longSuitesSkipped } from "../faults/fault-env";

const DISKS_PER_GUEST = 11;
const NICS_PER_GUEST = 2;
const PARALLEL = "16";

/** Most of our resource operations the engine had in flight at once (step started, outputs not yet back). */
function peakInFlight(run: RunResult): number {
    let now = 0;
    let peak = 0;
    for (const event of run.events) {
        const started = event.resourcePreEvent?.metadata;
        const ended = event.resOutputsEvent?.metadata ?? event.resOpFailedEvent?.metadata;
        if (started && started.type.startsWith("pulumi-nodejs:dynamic/") && started.op !== "same") peak = Math.max(peak, ++now);
        if (ended && ended.type.startsWith("pulumi-nodejs:dynamic/") && ended.op !== "same") now--;
    }
    return peak;
}

function ours(run: RunResult): Record<string, string> {
    return Object.fromEntries(Object.entries(run.ops).filter(([name]) => !run.types[name]?.startsWith("pulumi:")));
}

describe("load: one up with 40 devices across pll-fault2..4, engine parallelism 16", function () {
    this.timeout(30 * 60 * 1000);
    let env: RigEnv;
    let consumer: Consumer;
    let stack: TestStack | undefined;
    const images = new Map<string, string[]>();
    let iso = "";
    const previousParallel = process.env.PULUMI_PARALLEL;
    const baseline = new Map<string, { disks: number; nics: number }>();

    before(async function () {
        if (longSuitesSkipped()) this.skip();
        env = rigUp();
        for (const guest of FAULT_GUESTS) {
            images.set(guest, Array.from({ length: DISKS_PER_GUEST }, (_, i) => createImage(env, `load-${guest}-${i}`)));
        }
        iso = createIso(env, "load-iso");
        const [installed] = await Promise.all([installConsumer(), resetGuests([...FAULT_GUESTS])]);
        consumer = installed;
        for (const guest of FAULT_GUESTS) baseline.set(guest, { disks: disksIn(liveXml(guest)).length, nics: interfacesIn(liveXml(guest)).length });
        // The CLI reads its default --parallel from PULUMI_PARALLEL (pkg/cmd/pulumi/operations/up.go).
        process.env.PULUMI_PARALLEL = PARALLEL;
    });

    after(async function () {
        if (longSuitesSkipped()) return;
        if (previousParallel === undefined) delete process.env.PULUMI_PARALLEL;
        else process.env.PULUMI_PARALLEL = previousParallel;
        await stack?.destroy().catch(() => undefined);
        await stack?.remove();
        removeFiles([...[...images.values()].flat(), iso]);
        for (const guest of FAULT_GUESTS) resetGuestInBackground(guest);
    });

    const program: AutomationModule.PulumiFn = async () => {
        const sdk = consumer.load();
        const connection = rigStackConnection(consumer, env);
        const out: Record<string, unknown> = {};
        for (const guest of FAULT_GUESTS) {
            (images.get(guest) ?? []).forEach((source, i) => {
                out[`${guest}-disk${i}`] = new sdk.AttachedDisk(`${guest}-disk${i}`, { connection, domain: guest, source }).target;
            });
            for (let i = 0; i < NICS_PER_GUEST; i++) {
                out[`${guest}-nic${i}`] = new sdk.AttachedInterface(`${guest}-nic${i}`, { connection, domain: guest, type: "bridge", source: env.PLL_BRIDGE }).mac;
            }
        }
        out.iso = new sdk.AttachedCdrom("pll-fault2-iso", { connection, domain: "pll-fault2", target: "hdc", source: iso }).lastMediaChange;
        return out;
    };

    it("up: 40 creates, each device once in live and config XML, no lock error in the engine log; refresh and preview agree", async () => {
        stack = await openTestStack(consumer, "load-40", program);
        const up = await stack.up();
        const ops = ours(up);
        assert.equal(Object.keys(ops).length, 40, `40 resources: ${Object.keys(ops).join(" ")}`);
        assert.ok(Object.values(ops).every((op) => op === "create"), JSON.stringify(ops));
        assert.doesNotMatch(up.log, /cannot acquire state change lock|Timed out during operation|error:/i, "no lock error (or any error) reaches the user");
        const peak = peakInFlight(up);
        console.log(`      up of 40 devices at --parallel ${PARALLEL}: ${(up.ms / 1000).toFixed(1)} s, peak ${peak} operations in flight`);
        assert.ok(peak > 3 && peak <= Number(PARALLEL), `the engine ran up to ${PARALLEL} at once: peak ${peak}`);

        for (const guest of FAULT_GUESTS) {
            const live = liveXml(guest);
            const config = configXml(guest);
            for (const [i, source] of (images.get(guest) ?? []).entries()) {
                for (const [where, xml] of [["live", live], ["config", config]] as const) {
                    const found = disksIn(xml).filter((d) => d.source === source);
                    assert.equal(found.length, 1, `${guest} ${where}: ${source} once`);
                    assert.equal(found[0].target, String(up.outputs[`${guest}-disk${i}`].value), `${guest} ${where}: target as the stack says`);
                }
            }
            const targets = disksIn(live).map((d) => d.target);
            assert.equal(new Set(targets).size, targets.length, `${guest}: distinct targets ${targets.join(" ")}`);
            const base = baseline.get(guest) ?? { disks: 0, nics: 0 };
            assert.equal(disksIn(live).length, base.disks + DISKS_PER_GUEST, `${guest}: disk count`);
            for (const xml of [live, config]) {
                const macs = interfacesIn(xml).map((n) => n.mac).sort();
                const expected = Array.from({ length: NICS_PER_GUEST }, (_, i) => String(up.outputs[`${guest}-nic${i}`].value)).sort();
                assert.deepEqual(macs, expected, `${guest}: exactly the stack's NICs`);
            }
        }
        assert.equal(diskByTarget(liveXml("pll-fault2"), "hdc")?.source, iso, "ISO inserted");
        assert.equal(diskByTarget(configXml("pll-fault2"), "hdc")?.source, iso, "ISO in config");

        const refresh = await stack.refresh();
        assert.ok(Object.values(ours(refresh)).every((op) => op === "same"), `refresh found drift: ${JSON.stringify(ours(refresh))}`);
        const preview = await stack.preview({ expectNoChanges: true });
        assert.ok(Object.values(ours(preview)).every((op) => op === "same"));
        console.log(`      refresh ${(refresh.ms / 1000).toFixed(1)} s, preview ${(preview.ms / 1000).toFixed(1)} s`);
    });

    it("destroy: every device gone from live and config", async () => {
        assert.ok(stack, "the up ran");
        const destroy = await stack.destroy();
        assert.ok(Object.values(ours(destroy)).every((op) => op === "delete"), JSON.stringify(ours(destroy)));
        assert.doesNotMatch(destroy.log, /cannot acquire state change lock|Timed out during operation/i);
        console.log(`      destroy of 40 devices: ${(destroy.ms / 1000).toFixed(1)} s`);
        for (const guest of FAULT_GUESTS) {
            for (const xml of [liveXml(guest), configXml(guest)]) {
                for (const source of images.get(guest) ?? []) assert.equal(diskBySource(xml, source), undefined, `${guest}: ${source} gone`);
                assert.equal(interfacesIn(xml).length, baseline.get(guest)?.nics ?? 0, `${guest}: NICs gone`);
            }
        }
        assert.equal(diskByTarget(liveXml("pll-fault2"), "hdc")?.source, undefined, "ISO ejected");
    });
});
