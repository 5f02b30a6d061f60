import assert from "node:assert/strict";
import { execFileSync } from "child_process";
import { existsSync, mkdtempSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { InputError } from "../../provider/errors";
import { assertQuotable, shellCommand, shellQuote } from "../../provider/quoting";

/** What a real POSIX shell makes of the quoted word. */
function throughShell(value: string): string {
    return execFileSync("sh", ["-c", "printf %s " + shellQuote(value)], { encoding: "utf8" });
}

describe("quoting: shellQuote through a real sh -c", () => {
    let dir: string;
    let canary: string;

    before(() => {
        dir = mkdtempSync(join(tmpdir(), "pll-quoting-"));
        canary = join(dir, "canary");
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    const values = (c: string): string[] => [
        "plain",
        "two words",
        "  leading and trailing  ",
        "tab\there",
        "it's",
        "'",
        "''",
        "'quoted'",
        `"double"`,
        "back\\slash",
        `$(touch ${c})`,
        "`touch " + c + "`",
        `x; touch ${c}`,
        `x | touch ${c}`,
        `x && touch ${c}`,
        `x || touch ${c}`,
        `x > ${c}`,
        `$HOME $((1+1)) \${PATH}`,
        "*",
        "~",
        "!",
        "#comment",
        "-n",
        "--help",
        "-e \\n",
        "ünïcødé 日本語 🚀 ñ",
        "",
    ];

    it("every value comes back byte for byte", () => {
        for (const value of values(canary)) {
            assert.equal(throughShell(value), value, `value ${JSON.stringify(value)}`);
        }
    });

    it("never runs anything embedded in a value (the canary file is never created)", () => {
        for (const value of values(canary)) throughShell(value);
        assert.equal(existsSync(canary), false);
    });

    it("control: the same value unquoted does run the command (so the canary check means something)", () => {
        const control = join(dir, "control");
        execFileSync("sh", ["-c", `printf %s $(touch ${control})`]);
        assert.equal(existsSync(control), true);
    });

    it("wraps in single quotes and escapes embedded single quotes", () => {
        assert.equal(shellQuote("a b"), "'a b'");
        assert.equal(shellQuote("it's"), `'it'\\''s'`);
        assert.equal(shellQuote(""), "''");
        assert.equal(shellQuote("-n"), "'-n'");
    });

    it("shellCommand keeps each argument one word", () => {
        const argv = ["printf", "%s\\n", "a b", "it's", `$(touch ${canary})`, "-x", ""];
        const out = execFileSync("sh", ["-c", shellCommand(argv)], { encoding: "utf8" });
        assert.equal(out, argv.slice(2).map((a) => `${a}\n`).join(""));
        assert.equal(existsSync(canary), false);
    });
});

describe("quoting: refused characters", () => {
    for (const [name, value] of [["NUL", "a\0b"], ["newline", "a\nb"], ["carriage return", "a\rb"], ["trailing newline", "vm\n"]] as const) {
        it(`shellQuote refuses a ${name} with InputError`, () => {
            assert.throws(() => shellQuote(value), (e: unknown) => {
                assert.ok(e instanceof InputError);
                assert.match(e.message, /NUL or line break/);
                return true;
            });
        });
    }

    it("assertQuotable names the field and passes clean values", () => {
        assert.throws(() => assertQuotable("x\ny", "domain"), (e: unknown) => e instanceof InputError && e.message.startsWith("domain contains"));
        assert.doesNotThrow(() => assertQuotable("a\tb 'c' $(d)", "domain"));
    });

    it("shellCommand refuses when any argument holds a line break", () => {
        assert.throws(() => shellCommand(["virsh", "dominfo", "vm\nrm -rf /"]), InputError);
    });
});
