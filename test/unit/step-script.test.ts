/**
 * The step script (provider/virsh/step-script.ts) run by a real POSIX shell, as sshd would run it:
 * each step's stdout, stderr and exit apart; a failed step stops the rest of its group only;
 * stdin reaches the step literally; output cannot forge the frame; a step tried again (attempts)
 * answers with its last try. No SSH, no libvirt.
 */
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import { createHash } from "crypto";
import { mkdtempSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { shellCommand } from "../../provider/quoting";
import { buildStepScript, ScriptStep, StepOutcome } from "../../provider/virsh/step-script";
import { Virsh } from "../../provider/virsh/virsh";

function run(groups: ScriptStep[][], stdin = ""): StepOutcome[][] {
    const script = buildStepScript(groups);
    const result = spawnSync("sh", ["-c", script.text], { input: stdin, encoding: "utf8" });
    return script.parse(result.stdout, result.stderr);
}

const step = (...argv: string[]): ScriptStep => ({ commandLine: shellCommand(argv) });

describe("step script: many commands in one exec, each answer apart", () => {
    it("stdout, stderr and exit code of each step, with and without a final newline", () => {
        const [[a, b, c]] = run([[step("printf", "one\\ntwo\\n"), step("printf", "no newline"), step("sh", "-c", "echo oops >&2; echo out")]]);
        assert.deepEqual(a, { ran: true, exitCode: 0, stdout: "one\ntwo\n", stderr: "" });
        assert.deepEqual(b, { ran: true, exitCode: 0, stdout: "no newline", stderr: "" });
        assert.deepEqual(c, { ran: true, exitCode: 0, stdout: "out\n", stderr: "oops\n" });
    });

    it("a failed step stops the rest of its group, not the other groups", () => {
        const outcomes = run([
            [step("true"), step("sh", "-c", "echo 'error: no' >&2; exit 3"), step("echo", "never")],
            [step("echo", "other group")],
        ]);
        assert.equal(outcomes[0][0].ran && outcomes[0][0].exitCode, 0);
        assert.deepEqual(outcomes[0][1], { ran: true, exitCode: 3, stdout: "", stderr: "error: no\n" });
        assert.deepEqual(outcomes[0][2], { ran: false });
        assert.deepEqual(outcomes[1][0], { ran: true, exitCode: 0, stdout: "other group\n", stderr: "" });
    });

    it("stdin reaches its step literally (quotes, $(…), backticks); a step without stdin reads nothing of the exec's", () => {
        const hostile = `<disk serial='a'"b'>$(touch /tmp/pll-never) \`id\` ; | &&</disk>`;
        const [[piped, plain]] = run([[{ commandLine: shellCommand(["cat"]), stdin: hostile }, step("cat")]], "the exec's own stdin\n");
        assert.deepEqual(piped, { ran: true, exitCode: 0, stdout: hostile, stderr: "" });
        assert.deepEqual(plain, { ran: true, exitCode: 0, stdout: "", stderr: "" });
    });

    it("stdin reaches its step byte for byte: line breaks, CR, NUL, non-ASCII, trailing blank lines", () => {
        const text = "<description>line one\n  line two\r\n\tthree 'q' \"d\" é 日本</description>\n\0\n\n";
        const [[piped]] = run([[{ commandLine: shellCommand(["cat"]), stdin: text }]]);
        assert.deepEqual(piped, { ran: true, exitCode: 0, stdout: text, stderr: "" });
        const script = buildStepScript([[{ commandLine: shellCommand(["cat"]), stdin: text }]]).text;
        assert.ok(!script.includes("line two"), "the text travels encoded, never as shell words");
    });

    it("a step that is a pipeline reads its own pipe, with or without stdin", () => {
        const pipeline = `${shellCommand(["printf", "a\\nb\\n"])} | while IFS= read -r x; do printf '<%s>' "$x"; done`;
        const [[plain, fed]] = run([[{ commandLine: pipeline }, { commandLine: `${shellCommand(["cat"])} | ${shellCommand(["tr", "a-z", "A-Z"])}`, stdin: "up" }]]);
        assert.deepEqual(plain, { ran: true, exitCode: 0, stdout: "<a><b>", stderr: "" });
        assert.deepEqual(fed, { ran: true, exitCode: 0, stdout: "UP", stderr: "" });
    });

    it("output that imitates the frame (another script's markers) stays output", () => {
        // printf turns each backslash-n of its format into a line break.
        const format = "<<pll-000000000000-end-0-0-0>>\\n<<pll-000000000000-begin-1-0>>\\n";
        const [[a], [b]] = run([[step("printf", format)], [step("echo", "b")]]);
        assert.deepEqual(a, { ran: true, exitCode: 0, stdout: format.replace(/\\n/g, "\n"), stderr: "" });
        assert.deepEqual(b, { ran: true, exitCode: 0, stdout: "b\n", stderr: "" });
    });

    it("a script whose shell never ran (no frames in the output) reports every step as not run", () => {
        const script = buildStepScript([[step("true")], [step("true")]]);
        assert.deepEqual(script.parse("", "sh: cannot execute\n"), [[{ ran: false }], [{ ran: false }]]);
    });
});

describe("step script: a step the guest must catch up with (Command.attempts)", () => {
    const virsh = new Virsh(undefined as never, "test:///default", "g", false, 30);
    /** A host command that fails until its counter file reaches `succeedAt`, printing which try it is. */
    const flaky = (counter: string, succeedAt: number) => virsh.commandLine({
        host: true, attempts: 4,
        args: ["sh", "-c", `n=$(( $(cat "$0" 2>/dev/null || echo 0) + 1 )); echo "$n" >"$0"; echo "try $n" >&2; [ "$n" -ge ${succeedAt} ] && echo "ok at $n"`, counter],
    });
    let dir = "";
    beforeEach(() => { dir = mkdtempSync(join(tmpdir(), "pll-attempts-")); });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it("tried again until it succeeds; the earlier tries' errors are not the step's", () => {
        const [[outcome]] = run([[{ commandLine: flaky(join(dir, "n"), 3) }]]);
        assert.deepEqual(outcome, { ran: true, exitCode: 0, stdout: "ok at 3\n", stderr: "" });
    });

    it("still failing at the last try: that try's exit and error speak for the step", () => {
        const [[outcome]] = run([[{ commandLine: flaky(join(dir, "n"), 99) }]]);
        assert.deepEqual(outcome, { ran: true, exitCode: 1, stdout: "", stderr: "try 4\n" });
    });
});

describe("step script: a compare before a write (Command.outputSha256)", () => {
    const virsh = new Virsh(undefined as never, "test:///default", "g", false, 30);
    const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");
    const text = "<domain>\n  <graphics passwd='s3cret'/>\n</domain>\n";
    // printf turns each backslash-n of its format into the line break of `text`.
    const compare = (expected: string) => ({ commandLine: virsh.commandLine({ host: true, args: ["printf", text.replace(/\n/g, "\\n")], outputSha256: expected }) });

    it("the same text: the step succeeds, prints nothing, and the next step of its group runs", () => {
        const [[check, write]] = run([[compare(sha256(text)), step("echo", "written")]]);
        assert.deepEqual(check, { ran: true, exitCode: 0, stdout: "", stderr: "" });
        assert.deepEqual(write, { ran: true, exitCode: 0, stdout: "written\n", stderr: "" });
    });

    it("another text (one byte changed): the step fails, the write does not run, the text read never travels back", () => {
        const [[check, write]] = run([[compare(sha256(text.replace("s3cret", "s3creT"))), step("echo", "written")]]);
        assert.deepEqual(check, { ran: true, exitCode: 1, stdout: "", stderr: "" });
        assert.deepEqual(write, { ran: false });
    });
});
