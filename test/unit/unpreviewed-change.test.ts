/**
 * provider-kit's refuseUnpreviewed with the DomainResources rule table: the preview's classes (from
 * the stored outputs) against the apply's (from the fresh read). A change the fresh read makes a
 * reboot or a replacement where the preview showed an update is refused, naming the refresh;
 * anything the preview already showed, or showed no worse, passes.
 */
import assert from "node:assert/strict";
import { InputError } from "../../provider/errors";
import { refuseUnpreviewed } from "../../provider/providers/provider-kit";
import { DOMAIN_RESOURCES_RULES } from "../../provider/rules/domain-resources-rules";
import type { Values } from "../../provider/rules/rule-table";

const MiB = 1024;
const ops = { table: DOMAIN_RESOURCES_RULES, wasRunning: (olds: Values) => olds.state !== "shut off" };
const connection = { host: "hv1", user: "root", privateKey: "KEY" };
/** Outputs as converge and read report them: 512 MiB maximum, 2 of 4 vCPUs, no agent. */
const outs = (more: Values = {}): Values => ({
    connection, domain: "vm1", memory: "256MiB", vcpus: 2, state: "running", maxMemoryKiB: 512 * MiB, currentVcpus: 2, maximumVcpus: 4,
    guestAgent: false, guestVcpus: null, ...more,
});
const news = (more: Values = {}): Values => ({ connection, domain: "vm1", memory: "256MiB", vcpus: 2, rebootPolicy: "ifRequired", ...more });
const refused = (stored: Values, fresh: Values, inputs: Values): string | undefined => {
    try {
        refuseUnpreviewed(ops, stored, fresh, inputs, { domain: "vm1" });
        return undefined;
    } catch (error) {
        assert.ok(error instanceof InputError, String(error));
        return error.message;
    }
};

describe("refuseUnpreviewed: the apply never does more than the preview showed", () => {
    it("memory above the maximum, read shut off (config), running now (reboot): refused, naming the refresh", () => {
        const message = refused(outs({ state: "shut off" }), outs(), news({ memory: "768MiB" }));
        assert.match(message ?? "", /memory: the preview showed config; with the domain running now it is reboot \(above the current maximum\)/);
        assert.match(message ?? "", /Nothing was changed/);
        assert.match(message ?? "", /pulumi preview --refresh/);
    });

    it("vCPUs down, the agent answered at the last read (live), gone now (reboot): refused", () => {
        assert.match(refused(outs({ guestAgent: true, guestVcpus: 2 }), outs(), news({ vcpus: 1 })) ?? "", /vcpus: the preview showed live; .* reboot/);
    });

    it("a maximum raised by hand since the last read: the preview showed no change for it, the apply would reboot to undo it: refused", () => {
        assert.match(refused(outs({ maxVcpus: 4 }), outs({ maxVcpus: 8 }), news({ maxVcpus: 4, vcpus: 3 })) ?? "", /maxVcpus: the preview showed no change/);
    });

    it("the same classes, or better ones now: passes", () => {
        assert.equal(refused(outs(), outs(), news({ memory: "384MiB", vcpus: 3 })), undefined, "live, live");
        assert.equal(refused(outs(), outs({ state: "shut off" }), news({ memory: "768MiB" })), undefined, "reboot then, config now");
        assert.equal(refused(outs({ state: "shut off" }), outs(), news({ memory: "384MiB" })), undefined, "config then, live now: still an update");
        assert.equal(refused(outs(), outs({ guestAgent: true, guestVcpus: 2 }), news({ vcpus: 1 })), undefined, "reboot then, live now");
    });
});
