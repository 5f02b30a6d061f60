import assert from "node:assert/strict";
import { readFileSync } from "fs";
import { join } from "path";
import { readmeSection, ruleTablesMarkdown } from "../../scripts/rule-tables-markdown";

describe("README rule tables", () => {
    it("match the rule tables the diff reads (run `npm run docs` after changing provider/rules)", () => {
        const readme = readFileSync(join(__dirname, "..", "..", "..", "README.md"), "utf8");
        assert.equal(readmeSection(readme), ruleTablesMarkdown());
    });
});
