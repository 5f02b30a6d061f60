/**
 * One exec for the requests of a batch's round: every member's steps (each member a group, in
 * change order), then the domain's state, live XML and config, then the probes. A libvirt failure
 * that means nothing happened (a held job lock, libvirtd not answering) reruns only the unfinished
 * part of the groups it hit, with backoff, within a bound. A lost answer (the SSH connection, or
 * libvirtd dying during a call) is never rerun blind: the domain is read again once it answers, so
 * each member can tell from the XML whether its change landed. A refresh read may be answered by the
 * refresh read of a moment ago (RecentRead).
 */
import { HostUnreachableError, RemoteShellError } from "../errors";
import type { ExecResult } from "../transport/ssh-host";
import { snapshotCommands } from "../virsh/domain-snapshot";
import { Probe, probeKey, probeLine } from "../virsh/probes";
import { buildStepScript, ScriptStep, StepOutcome } from "../virsh/step-script";
import { failureClass, FailureClass } from "../virsh/stderr-hints";
import { Command, sleep, timedOut, Virsh } from "../virsh/virsh";
import { Round, RoundRequest } from "./round";

const RETRY_DELAYS_MS = [250, 500, 1000, 2000, 4000, 8000];
/** No retry starts after this: libvirt itself already waits 30 s for a held job before it fails. */
const RETRY_BUDGET_MS = 90_000;
/** How long we keep trying to reconnect to read the XML before giving the unknown outcome back. */
const RECONNECT_BOUND_MS = 30_000;
/** Slack over the sum of the steps' own bounds before the transport gives up on an exec. */
const EXEC_SLACK_MS = 30_000;
/** How long after its answer a refresh's read may serve the engine's next refresh wave. */
const RECENT_READ_MS = 2_000;

interface Pending {
    request: number;
    /** Index of the first step of this request still to run. */
    from: number;
}

function failedAs(outcome: StepOutcome): FailureClass | undefined {
    return outcome.ran && outcome.exitCode !== 0 ? failureClass(outcome.stderr) : undefined;
}

/** A read is safe to repeat whatever cut it short. */
function readAgain(outcome: StepOutcome): boolean {
    const failure = failedAs(outcome);
    return failure === "notStarted" || failure === "callLost";
}

interface ExecAnswer {
    /** One outcome list per step group, in the order given. */
    groups: StepOutcome[][];
    /** domstate, dumpxml, dumpxml --inactive. */
    reads: StepOutcome[];
    /** One outcome per probe, in the order given. */
    probes: StepOutcome[];
}

/** One exec: the step groups, then the domain's read, then the probes. */
async function execOnce(virsh: Virsh, stepGroups: readonly (readonly Command[])[], probes: readonly Probe[]): Promise<ExecAnswer> {
    const groups: ScriptStep[][] = [
        ...stepGroups.map((steps) => steps.map((c) => ({ commandLine: virsh.commandLine(c), stdin: c.stdin }))),
        ...snapshotCommands(virsh.domain).map((c) => [{ commandLine: virsh.commandLine(c) }]),
        ...probes.map((p) => [{ commandLine: probeLine(p, virsh) }]),
    ];
    const script = buildStepScript(groups);
    // Each step's own bound (a disk move's copy may take longer than operationTimeout).
    const readCount = groups.length - stepGroups.length;
    const boundSeconds = stepGroups.flat().reduce((n, c) => n + (c.timeoutSeconds ?? virsh.operationTimeoutSeconds), readCount * virsh.operationTimeoutSeconds);
    const result = await runScript(virsh, script.text, boundSeconds * 1000 + EXEC_SLACK_MS);
    const parsed = script.parse(result.stdout, result.stderr);
    // The first step of every group always runs: no frame at all means the script never ran.
    if (parsed.every((group) => group.every((o) => !o.ran))) throw shellFailed(virsh, result);
    const changes = stepGroups.length;
    return { groups: parsed.slice(0, changes), reads: parsed.slice(changes, changes + 3).map((g) => g[0]), probes: parsed.slice(changes + 3).map((g) => g[0]) };
}

/** What the login shell runs: a POSIX shell reading the script from the exec channel. */
const SCRIPT_SHELL = "/bin/sh -s";
/** What every frame marker of a step script starts with (step-script.ts). */
const FRAME_PREFIX = "<<pll-";

/** On stdin, in braces: no argument-length limit, any login shell, and nothing runs before the whole script arrived. */
export function runScript(virsh: Virsh, text: string, timeoutMs?: number): Promise<ExecResult> {
    return virsh.host.exec(SCRIPT_SHELL, `{\n${text}\n}\n`, timeoutMs);
}

function shellFailed(virsh: Virsh, result: ExecResult): RemoteShellError {
    // A shell that echoed what it read would echo the script (a define's config in it): that output is left out.
    const said = [result.stderr, result.stdout].filter((text) => !text.includes(FRAME_PREFIX)).map((text) => text.trim()).filter(Boolean)
        .join("\n").slice(0, 2000) || "nothing";
    return new RemoteShellError(`the remote shell failed before running any command (exit ${result.exitCode}); it said: ${said}`, { host: virsh.host.label, domain: virsh.domain },
        "the SSH user's login shell must run `/bin/sh -s`: check its shell (`getent passwd USER`: not /usr/sbin/nologin or /bin/false), that its ~/.bashrc or " +
        "~/.profile neither exits nor fails in a non-interactive shell, that sshd has no ForceCommand for it, and that /bin/sh exists; " +
        "`ssh USER@HOST /bin/sh -s < /dev/null` shows the same", result.exitCode);
}

/** The last read of one domain on one connection made for refresh reads: when, and which resources it answered. */
export class RecentRead {
    private last?: { at: number; answer: ExecAnswer; probes: readonly Probe[]; answered: Set<string> };

    /** The answer, when it is fresh, holds every probe asked for, and has answered none of `resources` yet. */
    take(probes: readonly Probe[], resources: readonly string[]): ExecAnswer | undefined {
        const last = this.last;
        if (!last || Date.now() - last.at > RECENT_READ_MS) return undefined;
        const known = new Set(last.probes.map(probeKey));
        if (!probes.every((p) => known.has(probeKey(p))) || resources.some((r) => last.answered.has(r))) return undefined;
        for (const r of resources) last.answered.add(r);
        // In the order asked for, as execOnce answers.
        return { ...last.answer, probes: probes.map((p) => last.answer.probes[last.probes.findIndex((q) => probeKey(q) === probeKey(p))]) };
    }

    /** Keeps a refresh read, timed from when its answer came, with the resources it answered. */
    keep(answer: ExecAnswer, probes: readonly Probe[], resources: readonly string[]): void {
        this.last = { at: Date.now(), answer, probes, answered: new Set(resources) };
    }

    forget(): void {
        this.last = undefined;
    }
}

/** Runs the requests of one round on one host, returning one Round per request, in order. */
export async function executeRound(virsh: Virsh, requests: readonly RoundRequest[], recent: RecentRead): Promise<Round[]> {
    const stepsOf = (i: number): Command[] => requests[i].steps ?? [];
    const outcomes: StepOutcome[][] = requests.map((_, i) => stepsOf(i).map((): StepOutcome => ({ ran: false })));
    const probes = [...new Map(requests.flatMap((r) => r.probes ?? []).map((p) => [probeKey(p), p])).values()];
    const refreshOf = requests.flatMap((r, i) => (r.refreshOf !== undefined && stepsOf(i).length === 0 ? [r.refreshOf] : []));
    const refresh = refreshOf.length === requests.length;
    const shared = refresh ? recent.take(probes, refreshOf) : undefined;
    if (shared) return requests.map(() => new Round(virsh, [], undefined, shared.reads, new Map(probes.map((p, i) => [probeKey(p), shared.probes[i]])), undefined));
    // A change makes every earlier read stale; a read taken while it runs would be too.
    recent.forget();
    // Change order, then arrival: removals free what additions take.
    let pending: Pending[] = requests.map((_, request) => ({ request, from: 0 }))
        .filter((p) => stepsOf(p.request).length > 0)
        .sort((a, b) => (requests[a.request].order ?? 0) - (requests[b.request].order ?? 0));
    const started = Date.now();
    let answerLost = false;
    /** Per request: the step whose call libvirtd dropped (it may have happened); the steps after it did not run. */
    const callLost = new Map<number, number>();
    let answer: ExecAnswer;
    for (let attempt = 0; ; attempt++) {
        try {
            answer = await execOnce(virsh, pending.map((p) => stepsOf(p.request).slice(p.from)), probes);
        } catch (error) {
            if (!(error instanceof HostUnreachableError && error.outcomeUnknown)) throw error;
            // The steps may or may not have run: what the domain looks like once the host answers decides.
            answerLost = true;
            answer = await readAfterReconnect(virsh, probes, error);
            break;
        }
        const groups = answer.groups;
        pending.forEach((p, g) => groups[g].forEach((o, s) => { outcomes[p.request][p.from + s] = o; }));
        const retry = pending.flatMap((p, g) => {
            const failed = groups[g].findIndex((o) => o.ran && o.exitCode !== 0);
            const failure = failed >= 0 ? failedAs(groups[g][failed]) : undefined;
            if (failure === "callLost") callLost.set(p.request, p.from + failed);
            return failure === "notStarted" ? [{ request: p.request, from: p.from + failed }] : [];
        });
        const delay = RETRY_DELAYS_MS[attempt];
        if ((retry.length === 0 && !answer.reads.some(readAgain)) || delay === undefined || Date.now() - started + delay >= RETRY_BUDGET_MS) break;
        await sleep(delay);
        pending = retry;
    }
    if (refresh) recent.keep(answer, probes, refreshOf);
    const answers = new Map(probes.map((p, i) => [probeKey(p), answer.probes[i]]));
    const jobInfo = outcomes.some((steps) => steps.some(timedOut)) ? await domainJob(virsh) : undefined;
    return requests.map((_, i) => {
        // Unknown from the first step when the whole answer was lost; from the dropped call otherwise.
        const unknownFrom = answerLost && stepsOf(i).length > 0 ? 0 : callLost.get(i);
        return new Round(virsh, outcomes[i], unknownFrom, answer.reads, answers, jobInfo);
    });
}

/** The read part of a round once the host answers again; the lost answer's error if it never does. */
async function readAfterReconnect(virsh: Virsh, probes: readonly Probe[], lost: HostUnreachableError): Promise<ExecAnswer> {
    const deadline = Date.now() + RECONNECT_BOUND_MS;
    for (;;) {
        try {
            return await execOnce(virsh, [], probes);
        } catch (error) {
            if (!(error instanceof HostUnreachableError)) throw error;
            if (Date.now() >= deadline) throw lost;
            await sleep(1000);
        }
    }
}

/** `virsh domjobinfo`, for the message of a step abandoned at operationTimeout. */
async function domainJob(virsh: Virsh): Promise<string> {
    const script = buildStepScript([[{ commandLine: virsh.commandLine({ args: ["domjobinfo", `--domain=${virsh.domain}`] }) }]]);
    try {
        const result = await runScript(virsh, script.text, virsh.operationTimeoutSeconds * 1000 + EXEC_SLACK_MS);
        const [[outcome]] = script.parse(result.stdout, result.stderr);
        return outcome.ran ? (outcome.exitCode === 0 ? outcome.stdout : outcome.stderr) : "unknown";
    } catch {
        return "unknown (the host did not answer)";
    }
}
