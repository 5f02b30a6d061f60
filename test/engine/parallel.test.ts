/**
 * Issue 3, test 9: the engine's default parallelism against one shared provider process. 12 disks
 * and 4 NICs on pll-e2e1, plus memory/vCPU changes and devices on pll-e2e2, in one `pulumi up`
 * with no dependencies between them: everything lands, on distinct targets, without libvirt lock
 * errors; destroy takes it all away again. Checked with the test's own virsh.
 */
import assert from "node:assert/strict";
import { configXml, createImage, diskBySource, interfacesIn, liveXml, memStats, removeFiles, resetGuestInBackground, RigEnv, rigUp, vcpuCounts, waitFor } from "../rig/rig-env";
import { Consumer, installConsumer, openTestStack, RunResult, TestStack, rigStackConnection } from "./engine-fixture";
import { guestIdentity, GuestIdentity, resetGuests } from "./guest-facts";

const E2E1 = "pll-e2e1";
const E2E2 = "pll-e2e2";
const DISKS_E2E1 = 12;
const NICS_E2E1 = 4;
const DISKS_E2E2 = 2;
const NICS_E2E2 = 1;
const MIB = 1024;
const SIZES: Record<string, { memoryMiB: number; vcpus: number }> = { [E2E1]: { memoryMiB: 320, vcpus: 2 }, [E2E2]: { memoryMiB: 384, vcpus: 2 } };
/** What libvirt says when two jobs meet on one domain, or two devices on one target. */
const CONFLICT = /cannot acquire state change lock|duplicated|already in use|is already attached|Timed out during operation/i;

/** How many creates the engine had started before the first one finished. */
function inFlightAtFirstFinish(run: RunResult): number {
    let started = 0;
    for (const event of run.events) {
        if (event.resourcePreEvent?.metadata.op === "create" && event.resourcePreEvent.metadata.type.includes("libvirt-live")) started++;
        if (event.resOutputsEvent?.metadata.op === "create" && event.resOutputsEvent.metadata.type.includes("libvirt-live")) return started;
    }
    return started;
}

describe("engine: default parallelism, 12 disks + 4 NICs on pll-e2e1 and changes on pll-e2e2 in one up", function () {
    this.timeout(600_000);
    let env: RigEnv;
    let consumer: Consumer;
    let stack: TestStack | undefined;
    const images: Record<string, string[]> = { [E2E1]: [], [E2E2]: [] };
    let identities: Record<string, GuestIdentity> = {};

    before(async function () {
        env = rigUp();
        for (let i = 0; i < DISKS_E2E1; i++) images[E2E1].push(createImage(env, `e2e-par1-${i}`, "raw", "4M"));
        for (let i = 0; i < DISKS_E2E2; i++) images[E2E2].push(createImage(env, `e2e-par2-${i}`, "raw", "4M"));
        [consumer] = await Promise.all([installConsumer(), resetGuests([E2E1, E2E2])]);
        identities = { [E2E1]: guestIdentity(E2E1), [E2E2]: guestIdentity(E2E2) };
    });

    after(async function () {
        await stack?.remove();
        removeFiles([...images[E2E1], ...images[E2E2]]);
        for (const guest of [E2E1, E2E2]) resetGuestInBackground(guest);
    });

    it("9. one up creates 12 disks + 4 NICs on pll-e2e1 and resizes both domains at once: all land on distinct targets/MACs, no lock error; destroy removes them all", async () => {
        stack = await openTestStack(consumer, "pll-e2e-parallel", async () => {
            const sdk = consumer.load();
            const connection = rigStackConnection(consumer, env);
            for (const [domain, nics] of [[E2E1, NICS_E2E1], [E2E2, NICS_E2E2]] as const) {
                const size = SIZES[domain];
                new sdk.DomainResources(`${domain}-resources`, { connection, domain, memory: `${size.memoryMiB}MiB`, vcpus: size.vcpus });
                images[domain].forEach((source, i) => new sdk.AttachedDisk(`${domain}-disk${i}`, { connection, domain, source, cache: "none", io: "native" }));
                for (let i = 0; i < nics; i++) new sdk.AttachedInterface(`${domain}-nic${i}`, { connection, domain, type: "bridge", source: env.PLL_BRIDGE });
            }
        });
        const total = 2 + DISKS_E2E1 + NICS_E2E1 + DISKS_E2E2 + NICS_E2E2;

        const up = await stack.up();
        const ours = Object.entries(up.ops).filter(([name]) => up.types[name]?.includes("libvirt-live"));
        assert.equal(ours.length, total, "every resource reached the engine");
        assert.deepEqual(ours.filter(([, op]) => op !== "create"), [], "all created");
        assert.deepEqual(up.failed, []);
        assert.doesNotMatch(up.log, CONFLICT);
        const inFlight = inFlightAtFirstFinish(up);
        console.log(`      creates in flight when the first finished: ${inFlight}`);
        assert.ok(inFlight >= 4, `the engine ran creates in parallel (${inFlight} in flight)`);

        for (const [domain, nics] of [[E2E1, NICS_E2E1], [E2E2, NICS_E2E2]] as const) {
            for (const [where, xml] of [["live", liveXml(domain)], ["config", configXml(domain)]] as const) {
                const targets = images[domain].map((source) => diskBySource(xml, source)?.target);
                assert.ok(targets.every((t) => t !== undefined), `${domain} ${where}: every disk attached (${targets.join(" ")})`);
                assert.equal(new Set(targets).size, images[domain].length, `${domain} ${where}: distinct targets ${targets.join(" ")}`);
                const macs = interfacesIn(xml).filter((i) => i.bridge === env.PLL_BRIDGE).map((i) => i.mac);
                assert.equal(macs.length, nics, `${domain} ${where}: ${nics} NICs on ${env.PLL_BRIDGE}`);
                assert.equal(new Set(macs).size, nics, `${domain} ${where}: distinct MACs`);
                assert.equal(vcpuCounts(xml).current, SIZES[domain].vcpus, `${domain} ${where}: vCPUs`);
            }
            const kib = SIZES[domain].memoryMiB * MIB;
            await waitFor(`${domain} balloon ~${kib} KiB`, () => Math.abs(memStats(domain).actual - kib) <= MIB,
                { timeoutMs: 20_000, describe: () => JSON.stringify(memStats(domain)) });
            assert.deepEqual(guestIdentity(domain), identities[domain], `${domain} was not restarted`);
        }

        await stack.preview({ expectNoChanges: true });

        const destroy = await stack.destroy();
        assert.deepEqual(destroy.failed, []);
        assert.doesNotMatch(destroy.log, CONFLICT);
        for (const domain of [E2E1, E2E2]) {
            for (const [where, xml] of [["live", liveXml(domain)], ["config", configXml(domain)]] as const) {
                assert.deepEqual(images[domain].filter((source) => diskBySource(xml, source)), [], `${domain} ${where}: disks detached`);
                assert.deepEqual(interfacesIn(xml), [], `${domain} ${where}: NICs detached`);
            }
            assert.deepEqual(guestIdentity(domain), identities[domain], `${domain} still the same running guest`);
        }
    });
});
