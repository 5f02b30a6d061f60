/**
 * test/run-all.sh's closing lines when lanes ran side by side: the whole run's per-suite table, each
 * failure (title and first lines, so CI's tail of the output names it) and the one line CI reads, "tests: N passed, N failed, N skipped". A lane that wrote no summary (its
 * mocha died) counts as a failure, named.
 *
 *   node dist/test/lane-summary.js NAME=FILE...
 */
import { existsSync, readFileSync } from "fs";
import { formatFailures, formatSuiteTimes, LaneSummary } from "./suite-times";

const lanes: LaneSummary[] = [];
let lost = 0;
for (const arg of process.argv.slice(2)) {
    const [lane, file] = arg.split("=", 2);
    if (!file || !existsSync(file)) {
        console.log(`lane ${lane}: no summary (${file ?? "no file given"}): its mocha did not finish`);
        lost += 1;
        continue;
    }
    lanes.push({ ...(JSON.parse(readFileSync(file, "utf8")) as LaneSummary), lane });
}
console.log(formatSuiteTimes(lanes));
for (const failure of formatFailures(lanes)) console.log(failure);
const sum = (key: "passed" | "failed" | "skipped") => lanes.reduce((n, lane) => n + lane[key], 0);
console.log(`tests: ${sum("passed")} passed, ${sum("failed") + lost} failed, ${sum("skipped")} skipped`);
process.exitCode = sum("failed") + lost > 0 ? 1 : 0;
