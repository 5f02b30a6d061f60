/** The end of a long run's output names each failure: CI shows only its tail. */
import assert from "node:assert/strict";
import { failureOf, formatFailures } from "../suite-times";

describe("test run summary: failures named at the end of the output", () => {
    it("keeps a failure's first lines, each cut at 200 characters, and names the lane", () => {
        const long = "x".repeat(250);
        const failure = failureOf("suite test", { message: `first\n\n${long}\n3\n4\n5\n6\n7` });
        assert.deepEqual(failure.error.split("\n"), ["first", `${"x".repeat(200)}…`, "3", "4", "5", "6"]);
        const lines = formatFailures([{ lane: "apart", passed: 1, failed: 1, skipped: 0, seconds: 1, suites: [], failures: [failure] }]);
        assert.equal(lines.length, 1);
        assert.match(lines[0], /^FAILED \(lane apart\): suite test\n {4}first\n/);
    });

    it("prints nothing when every test passed", () => {
        assert.deepEqual(formatFailures([{ passed: 3, failed: 0, skipped: 0, seconds: 1, suites: [], failures: [] }]), []);
    });
});
