/**
 * The guest's own view through the real engine (issue 11), on the rig's Debian guests: pll-deb1
 * with the guest agent, pll-deb2 without. A vCPU decrease previews as an update (live, through the
 * agent) on the one and as a replacement (reboot-required) on the other, from what the last read
 * found; `up` then offlines the CPUs in pll-deb1 without a restart. The engine's log carries the
 * no-agent warning. Checked with the test's own virsh and the guests' own console reports.
 */
import assert from "node:assert/strict";
import type * as AutomationModule from "@pulumi/pulumi/automation";
import { DEB_AGENT, DEB_NO_AGENT, onlineByAgent, waitForAgent, waitForView } from "../rig/debian-env";
import { configXml, resetGuest, resetGuestInBackground, RigEnv, rigUp, vcpuCounts } from "../rig/rig-env";
import { changed, Consumer, installConsumer, openTestStack, rigStackConnection, TestStack } from "./engine-fixture";
import { guestIdentity, GuestIdentity } from "./guest-facts";

const WITH_AGENT = "deb-agent-resources";
const WITHOUT_AGENT = "deb-plain-resources";

describe("engine: the guest's own view, with and without the guest agent (Debian pll-deb1, pll-deb2)", function () {
    this.timeout(600_000);
    let env: RigEnv;
    let consumer: Consumer;
    let stack: TestStack;
    let identity: GuestIdentity;

    const programFor = (c: Consumer, agentVcpus: number, plainVcpus: number): AutomationModule.PulumiFn => async () => {
        const sdk = c.load();
        const connection = rigStackConnection(c, env);
        const withAgent = new sdk.DomainResources(WITH_AGENT, { connection, domain: DEB_AGENT, vcpus: agentVcpus });
        const plain = new sdk.DomainResources(WITHOUT_AGENT, { connection, domain: DEB_NO_AGENT, vcpus: plainVcpus });
        return { agentGuestVcpus: withAgent.guestVcpus, agentCurrentVcpus: withAgent.currentVcpus, plainGuestVcpus: plain.guestVcpus, plainCurrentVcpus: plain.currentVcpus };
    };

    before(async function () {
        env = rigUp();
        resetGuest(DEB_AGENT);
        resetGuest(DEB_NO_AGENT);
        await waitForAgent(DEB_AGENT);
        consumer = await installConsumer();
        stack = await openTestStack(consumer, "pll-guest-agent-stack", programFor(consumer, 3, 2));
    });

    after(async function () {
        if (stack) {
            await stack.destroy().catch(() => undefined);
            await stack.remove();
        }
        resetGuestInBackground(DEB_AGENT);
        resetGuestInBackground(DEB_NO_AGENT);
    });

    it("v1 up: 3 vCPUs onlined in pll-deb1 by the agent; 2 plugged in pll-deb2, its count unknown, and the log says why", async () => {
        const run = await stack.up();
        assert.deepEqual(changed(run), { [WITH_AGENT]: "create", [WITHOUT_AGENT]: "create" });
        assert.equal(run.outputs.agentGuestVcpus.value, 3);
        assert.equal(run.outputs.agentCurrentVcpus.value, 3);
        assert.equal(run.outputs.plainGuestVcpus.value, null);
        assert.equal(run.outputs.plainCurrentVcpus.value, 2);
        await waitForView(env, DEB_AGENT, "3 CPUs online", (v) => v.onlineCpus === 3);
        assert.match(run.log, /domain 'pll-deb2': 2 vCPUs plugged live, but no guest agent answered/);
        identity = guestIdentity(DEB_AGENT);
    });

    it("preview of a decrease on both: an update for the guest with the agent (live), a replacement for the one without (reboot)", async () => {
        stack.setProgram(programFor(consumer, 1, 1));
        const preview = await stack.preview();
        assert.deepEqual(changed(preview), { [WITH_AGENT]: "update", [WITHOUT_AGENT]: "replace" });
    });

    it("up of the decrease on pll-deb1 alone: 1 CPU online in the guest, 1 in the config, no restart; then no changes", async () => {
        stack.setProgram(programFor(consumer, 1, 2));
        const run = await stack.up();
        assert.deepEqual(changed(run), { [WITH_AGENT]: "update" });
        assert.equal(run.outputs.agentGuestVcpus.value, 1);
        assert.equal(onlineByAgent(DEB_AGENT), 1);
        assert.equal(vcpuCounts(configXml(DEB_AGENT)).current, 1);
        await waitForView(env, DEB_AGENT, "1 CPU online", (v) => v.onlineCpus === 1);
        assert.deepEqual(guestIdentity(DEB_AGENT), identity, "no restart");
        await stack.preview({ expectNoChanges: true });
    });
});
