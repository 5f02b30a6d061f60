/**
 * The injection and bad-input suites once more, every provider call through the rig's bastion to
 * namespace host pll-hv1 (PLL_THROUGH_JUMP_HOST=1, see rigConnection): hostile values must stay
 * literal and be refused the same way when a jump host is in the path. Runs them in a child mocha
 * and checks, from the bastion's sshd log, that the hop was really used.
 */
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import { join } from "path";
import { acceptedLogins, loadNetnsEnv } from "../rig/netns-env";
import { REPO_ROOT, resetGuest, rigUp } from "../rig/rig-env";
import { FAULT_GUEST } from "./security-fixtures";

const SUITES = ["dist/test/faults/security-injection.test.js", "dist/test/faults/bad-input.test.js"];

describe("faults: the injection and bad-input suites through a jump host", function () {
    this.timeout(1_200_000);

    it(`${SUITES.map((s) => s.split("/").pop()).join(" and ")} pass with every connection through the bastion`, () => {
        const ns = loadNetnsEnv(rigUp());
        // The child mocha cannot see this process's background resets: the guest it uses is settled here.
        resetGuest(FAULT_GUEST);
        const [bastion0, hv0] = [acceptedLogins(ns, ns.bastion), acceptedLogins(ns, ns.hypervisors[0])];
        const result = spawnSync(process.execPath, [join(REPO_ROOT, "node_modules", "mocha", "bin", "mocha.js"), "--timeout", "600000", ...SUITES], {
            cwd: REPO_ROOT, encoding: "utf8", env: { ...process.env, PLL_THROUGH_JUMP_HOST: "1" }, timeout: 1_100_000,
        });
        const output = `${result.stdout}${result.stderr}`;
        const summary = output.split("\n").filter((l) => /passing|failing|pending/.test(l)).map((l) => l.trim());
        console.log(`      child mocha: ${summary.join(", ")}`);
        assert.equal(result.status, 0, `the suites failed through the jump host:\n${output.slice(-6000)}`);
        assert.ok(summary.some((l) => /\d+ passing/.test(l)));
        const logins = [acceptedLogins(ns, ns.bastion) - bastion0, acceptedLogins(ns, ns.hypervisors[0]) - hv0];
        console.log(`      logins during the suites: bastion ${logins[0]}, pll-hv1 ${logins[1]}`);
        assert.ok(logins[0] >= 1 && logins[1] >= 1, `the suites went through the bastion to pll-hv1 (logins ${logins})`);
    });
});
