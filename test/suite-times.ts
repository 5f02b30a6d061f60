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
}

const minutes = (seconds: number) => `${Math.floor(seconds / 60)} min ${String(Math.round(seconds % 60)).padStart(2, "0")} s`;

/** Slowest first, so a suite that grew shows at the top; each lane's own wall time below. */
export function formatSuiteTimes(lanes: LaneSummary[]): string {
    const rows = lanes.flatMap((lane) => lane.suites.map((suite) => ({ ...suite, lane: lane.lane })))
        .sort((a, b) => b.seconds - a.seconds);
    const withLane = lanes.some((lane) => lane.lane !== undefined);
    const lines = rows.map((row) =>
        `  ${row.seconds.toFixed(1).padStart(7)} s  ${String(row.tests).padStart(3)} tests  ${withLane ? `${(row.lane ?? "").padEnd(6)} ` : ""}${row.title}`);
    const totals = lanes.map((lane) => `  ${lane.lane ?? "run"}: ${minutes(lane.seconds)}, ${lane.suites.length} suites, ${lane.passed} passed, ${lane.failed} failed, ${lane.skipped} skipped`);
    return ["time per suite (hooks included), slowest first:", ...lines, ...totals].join("\n");
}
