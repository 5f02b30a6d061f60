/**
 * Reads `pulumi preview --json` on stdin and says, for each libvirt-live resource the engine will
 * replace, which property forces it and why, from the same rule tables the provider's diff reads
 * (the engine's own output shows only the `+-` mark and the property names). Markdown, so a CI job
 * can post it as a pull-request comment or step summary.
 *
 *   pulumi preview --json | node explain-preview.js [--fail-on-reboot]
 *
 * Exit status: 0; with --fail-on-reboot, 3 when a change needs a reboot of a running guest.
 */
import { readFileSync } from "fs";
import { rules } from "pulumi-libvirt-live/provider";

interface ResourceState {
    type?: string;
    inputs?: Record<string, unknown>;
    outputs?: Record<string, unknown>;
}

interface PreviewStep {
    op: string;
    urn: string;
    oldState?: ResourceState;
    newState?: ResourceState;
    replaceReasons?: string[];
}

interface PreviewJson {
    steps?: PreviewStep[];
    changeSummary?: Record<string, number>;
}

const TYPE_PREFIX = "pulumi-nodejs:dynamic/libvirt-live:";
const TABLES = [rules.DOMAIN_RESOURCES_RULES, rules.ATTACHED_DISK_RULES, rules.ATTACHED_INTERFACE_RULES, rules.ATTACHED_CDROM_RULES];

/** What `pulumi up` will do with a reboot-required change, by the resource's rebootPolicy. */
const POLICY_OUTCOME: Readonly<Record<string, string>> = {
    never: "`pulumi up` stops before changing anything (rebootPolicy \"never\")",
    ifRequired: "`pulumi up` writes the config, shuts the guest down gracefully and starts it (rebootPolicy \"ifRequired\")",
    configOnly: "`pulumi up` writes the config only; it takes effect at the next reboot (rebootPolicy \"configOnly\")",
};

const show = (value: unknown): string => (value === undefined ? "(unset)" : JSON.stringify(value));

function explain(step: PreviewStep): { lines: string[]; reboot: boolean } {
    const type = step.urn.split("::")[2] ?? "";
    const name = step.urn.split("::")[3] ?? step.urn;
    const table = TABLES.find((t) => `${TYPE_PREFIX}${t.resource}` === type);
    const olds = step.oldState?.outputs ?? {};
    const news = step.newState?.inputs ?? {};
    if (!table) return { lines: [`| ${name} | ${type} | ${(step.replaceReasons ?? []).join(", ")} | | not a libvirt-live resource |`], reboot: false };
    const running = olds.state !== "shut off";
    const changes = rules.classifyChanges(table, olds, news, running).filter((c) => rules.needsReplacement(c.kind));
    const policy = String(news.rebootPolicy ?? "never");
    const lines = changes.map((c) => {
        const outcome = c.kind === "reboot" ? `**reboot** (${c.rule.how}); ${POLICY_OUTCOME[policy] ?? ""}` : `**replace**: ${c.rule.how}`;
        return `| ${table.resource} \`${name}\` | \`${c.path}\` ${show(c.oldValue)} → ${show(c.newValue)} | ${c.rule.when} | ${outcome} |`;
    });
    if (lines.length === 0) {
        // Secret values (the connection) reach the JSON as "[secret]": name the properties at least.
        lines.push(`| ${table.resource} \`${name}\` | ${(step.replaceReasons ?? []).map((r) => `\`${r}\``).join(", ")} | secret or unknown values | **replace** |`);
    }
    return { lines, reboot: changes.some((c) => c.kind === "reboot") };
}

function main(): void {
    const preview = JSON.parse(readFileSync(0, "utf8")) as PreviewJson;
    const replaced = (preview.steps ?? []).filter((s) => s.op === "replace" || s.op === "create-replacement");
    const summary = Object.entries(preview.changeSummary ?? {}).map(([op, n]) => `${op} ${n}`).join(", ");
    console.log(`### libvirt-live preview: ${summary || "no changes"}\n`);
    if (replaced.length === 0) {
        console.log("No replacement: every change is applied live (or stored).");
        return;
    }
    const explained = replaced.map(explain);
    console.log("| resource | change | rule | what happens |\n| --- | --- | --- | --- |");
    for (const { lines } of explained) console.log(lines.join("\n"));
    const reboot = explained.some((e) => e.reboot);
    if (reboot) console.log("\nA reboot of a running guest is needed: review before merging.");
    if (reboot && process.argv.includes("--fail-on-reboot")) process.exitCode = 3;
}

main();
