/** Two DomainResources on one domain in one batch: each claims before its first round, and after it both refuse, naming each other. */
import assert from "node:assert/strict";
import type { DomainSession } from "../../provider/batch/domain-batch";
import type { DomainResourcesInputs } from "../../provider/contract";
import { InputError } from "../../provider/errors";
import { claimDomainResources, refuseSharedDomainResources } from "../../provider/providers/resources-owners";
import { Virsh } from "../../provider/virsh/virsh";

const target = { connection: { host: "hv1" }, domain: "web1" };

describe("one DomainResources per domain in a batch", () => {
    const session = (): DomainSession => ({ virsh: new Virsh({ label: "hv1" } as never, "qemu:///system", "web1", false, 30), owners: new Map() } as unknown as DomainSession);

    it("a DomainResources alone in its batch goes ahead", () => {
        const alone = session();
        refuseSharedDomainResources(alone, claimDomainResources(alone, { ...target, memory: "1GiB" }));
    });

    it("two refuse, each naming itself and the other by what they manage", () => {
        const shared = session();
        const first: DomainResourcesInputs = { ...target, memory: "1GiB", vcpus: 2 };
        const second: DomainResourcesInputs = { ...target, memoryTune: { hardLimit: "2GiB" }, rebootPolicy: "never" };
        const [a, b] = [claimDomainResources(shared, first), claimDomainResources(shared, second)];
        const refusal = (own: number): InputError => {
            try {
                refuseSharedDomainResources(shared, own);
            } catch (error) {
                assert.ok(error instanceof InputError);
                return error;
            }
            assert.fail("expected a refusal");
        };
        assert.match(refusal(a).message, /2 DomainResources manage domain 'web1' in one update: this one is the one managing memory, vcpus, beside the one managing memoryTune; .* none of them changed anything/);
        assert.match(refusal(b).message, /this one is the one managing memoryTune, beside the one managing memory, vcpus;/);
        assert.match(refusal(b).hint, /manage the domain's memory, vCPUs and tuning in one DomainResources/);
    });
});
