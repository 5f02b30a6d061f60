/** Renders a rule table as the Markdown the README shows, so docs and diff read the same data. */
import type { ChangeKind, RuleTable } from "./rule-table";

const WORDS: Record<ChangeKind, string> = {
    live: "live",
    config: "config only",
    reboot: "**reboot**",
    replace: "**replace**",
    none: "stored only",
};

export function renderRuleTable(table: RuleTable): string {
    const rows = table.rules.map((r) =>
        `| \`${r.path}\` | ${r.when} | ${WORDS[r.running]} | ${WORDS[r.shutOff]} | ${r.how} |`);
    return [
        `#### ${table.resource}`,
        "",
        "| property | change | domain running | domain shut off | what runs |",
        "| --- | --- | --- | --- | --- |",
        ...rows,
    ].join("\n");
}
