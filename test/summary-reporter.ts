/**
 * Mocha's spec output, then a table of the time each top-level suite took (hooks included, so a
 * slow guest reset shows), then one plain closing line, "tests: N passed, N failed, N skipped",
 * that CI reads to know tests ran. With PLL_LANE_SUMMARY=FILE (test/run-all.sh runs lanes side by
 * side) the counts and the table go to FILE as JSON instead of the closing line: test/lane-summary.ts
 * prints the whole run's table, the failures and the one closing line.
 */
import * as Mocha from "mocha";
import { writeFileSync } from "fs";
import { failureOf, formatFailures, formatSuiteTimes, LaneSummary, SuiteTime, TestFailure } from "./suite-times";

const { EVENT_RUN_END, EVENT_SUITE_BEGIN, EVENT_SUITE_END, EVENT_TEST_FAIL } = Mocha.Runner.constants;

class SummaryReporter extends Mocha.reporters.Spec {
    constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
        super(runner, options);
        const started = new Map<Mocha.Suite, number>();
        const suites: SuiteTime[] = [];
        const failures: TestFailure[] = [];
        runner.on(EVENT_TEST_FAIL, (test: Mocha.Runnable, err: Error) => { failures.push(failureOf(test.fullTitle(), err)); });
        const topLevel = (suite: Mocha.Suite) => suite.parent?.root === true;
        runner.on(EVENT_SUITE_BEGIN, (suite: Mocha.Suite) => { if (topLevel(suite)) started.set(suite, Date.now()); });
        runner.on(EVENT_SUITE_END, (suite: Mocha.Suite) => {
            const t0 = started.get(suite);
            if (t0 === undefined) return;
            const tests = suite.total();
            suites.push({ title: suite.title, seconds: (Date.now() - t0) / 1000, tests });
        });
        runner.once(EVENT_RUN_END, () => {
            const s = runner.stats;
            if (!s) return;
            const summary: LaneSummary = { passed: s.passes, failed: s.failures, skipped: s.pending, seconds: (s.duration ?? 0) / 1000, suites, failures };
            const laneFile = process.env.PLL_LANE_SUMMARY;
            if (laneFile) {
                writeFileSync(laneFile, `${JSON.stringify(summary)}\n`);
                return;
            }
            console.log(formatSuiteTimes([summary]));
            for (const failure of formatFailures([summary])) console.log(failure);
            console.log(`tests: ${s.passes} passed, ${s.failures} failed, ${s.pending} skipped`);
        });
    }
}

export = SummaryReporter;
