/**
 * The README's live/reboot/replace tables, rendered from the rule tables the diff reads.
 * `node dist/scripts/rule-tables-markdown.js --write` rewrites the README section; a unit test
 * fails when the README and the code disagree.
 */
import { readFileSync, writeFileSync } from "fs";
import { join } from "path";
import { rules } from "../provider";

export const START = "<!-- rule-tables:start (generated from provider/rules; run npm run docs) -->";
export const END = "<!-- rule-tables:end -->";

export function ruleTablesMarkdown(): string {
    return [rules.DOMAIN_RESOURCES_RULES, rules.ATTACHED_DISK_RULES, rules.ATTACHED_INTERFACE_RULES, rules.ATTACHED_CDROM_RULES]
        .map(rules.renderRuleTable).join("\n\n");
}

export function readmeSection(readme: string): string | undefined {
    const start = readme.indexOf(START);
    const end = readme.indexOf(END);
    return start < 0 || end < start ? undefined : readme.slice(start + START.length, end).trim();
}

if (require.main === module && process.argv.includes("--write")) {
    const path = join(__dirname, "..", "..", "README.md");
    const readme = readFileSync(path, "utf8");
    const start = readme.indexOf(START);
    const end = readme.indexOf(END);
    if (start < 0 || end < start) throw new Error(`README.md lacks the markers ${START} … ${END}`);
    writeFileSync(path, `${readme.slice(0, start + START.length)}\n${ruleTablesMarkdown()}\n${readme.slice(end)}`);
}
