/** The per-suite time table of a test run, one lane or several run side by side. */

export interface SuiteTime {
    title: string;
    /** Wall time from the suite's first hook to its last, hooks included. */
    seconds: number;
    tests: number;
}

export interface LaneSummary {
    /** Set by test/lane-summary.ts: which lane ran it. */
    lane?: string;
    passed: number;
    failed: number;
    skipped: number;
    seconds: number;
    suites: SuiteTime[];
    /** Each failed test or hook, so the end of a long run's output says what failed. */
    failures: TestFailure[];
}

export interface TestFailure {
    title: string;
    /** The error's first lines: the whole message is in the lane's own output above. */
    error: string;
}

const ERROR_LINES = 6;

/** What a failure keeps for the closing lines: its first lines, each cut at a readable width. */
export function failureOf(title: string, err: { message?: string; stack?: string }): TestFailure {
    const text = err.message ?? err.stack ?? String(err);
    const lines = text.split("\n").filter((line) => line.trim() !== "").slice(0, ERROR_LINES);
    return { title, error: lines.map((line) => (line.length > 200 ? `${line.slice(0, 200)}…` : line)).join("\n") };
}

/** The failures of every lane, last in the output so CI's tail of it shows them. */
export function formatFailures(lanes: LaneSummary[]): string[] {
    return lanes.flatMap((lane) => lane.failures.map((failure) =>
        [`FAILED${lane.lane ? ` (lane ${lane.lane})` : ""}: ${failure.title}`, ...failure.error.split("\n").map((line) => `    ${line}`)].join("\n")));
}

const minutes = (seconds: number) => `${Math.floor(seconds / 60)} min ${String(Math.round(seconds % 60)).padStart(2, "0")} s`;

/** Below this a suite is counted, not listed (the unit suites: dozens of them, milliseconds each). */
const LISTED_FROM_SECONDS = 1;

/** Slowest first, so a suite that grew shows at the top; each lane's own wall time below. */
export function formatSuiteTimes(lanes: LaneSummary[]): string {
    const all = lanes.flatMap((lane) => lane.suites.map((suite) => ({ ...suite, lane: lane.lane })));
    const rows = all.filter((row) => row.seconds >= LISTED_FROM_SECONDS).sort((a, b) => b.seconds - a.seconds);
    const quick = all.length - rows.length;
    const withLane = lanes.some((lane) => lane.lane !== undefined);
    const lines = rows.map((row) =>
        `  ${row.seconds.toFixed(1).padStart(7)} s  ${String(row.tests).padStart(3)} tests  ${withLane ? `${(row.lane ?? "").padEnd(6)} ` : ""}${row.title}`);
    const totals = lanes.map((lane) => `  ${lane.lane ?? "run"}: ${minutes(lane.seconds)}, ${lane.suites.length} suites, ${lane.passed} passed, ${lane.failed} failed, ${lane.skipped} skipped`);
    const unlisted = quick > 0 ? [`  (${quick} more suites took under ${LISTED_FROM_SECONDS} s each)`] : [];
    return ["time per suite (hooks included), slowest first:", ...lines, ...unlisted, ...totals].join("\n");
}
