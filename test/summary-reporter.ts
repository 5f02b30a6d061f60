/**
 * Mocha's spec output plus one plain closing line, "tests: N passed, N failed, N skipped", that CI
 * reads to know tests ran.
 */
import * as Mocha from "mocha";

const { EVENT_RUN_END } = Mocha.Runner.constants;

class SummaryReporter extends Mocha.reporters.Spec {
    constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
        super(runner, options);
        runner.once(EVENT_RUN_END, () => {
            const s = runner.stats;
            if (!s) return;
            console.log(`tests: ${s.passes} passed, ${s.failures} failed, ${s.pending} skipped`);
        });
    }
}

export = SummaryReporter;
