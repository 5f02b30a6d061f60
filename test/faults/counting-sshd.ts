/**
 * Server-side counts of what the provider costs: an sshd of our own (the fault suites' sshd on
 * another port) whose ForceCommand logs every remote command before running it, and whose log
 * holds one "Accepted" line per SSH handshake. The count tests and the benchmark read both.
 */
import { existsSync, readFileSync, writeFileSync } from "fs";
import { join } from "path";
import type { ConnectionInputs } from "../../provider/contract";
import { removeFiles, resetGuest, resetGuestInBackground, RigEnv, rigUp } from "../rig/rig-env";
import { FaultSshd } from "./fault-env";

export const COUNTING_PORT = 2224;

/**
 * Logs the command and what it was sent on stdin (the script the provider's `/bin/sh -s` reads),
 * base64, one line, under a lock (commands run in parallel), and runs it as sshd would, with a
 * plain POSIX shell, on that same stdin.
 */
const WRAPPER = `#!/bin/sh
log="$(dirname "$0")/../commands"
input=$(mktemp)
cat >"$input"
line=$({ printf '%s\\n' "$SSH_ORIGINAL_COMMAND"; cat "$input"; } | base64 -w0)
flock "$log" sh -c 'printf "%s\\n" "$1" >>"$2"' sh "$line" "$log"
exec 3<"$input"
rm -f "$input"
exec /bin/sh -c "$SSH_ORIGINAL_COMMAND" <&3 3<&-
`;

export class CountingSshd extends FaultSshd {
    constructor(env: RigEnv, port = COUNTING_PORT) {
        super(env, port, [`ForceCommand /var/tmp/pll-faults-${port}/bin/count-command`]);
    }

    override start(): void {
        super.start();
        writeFileSync(join(this.binDir, "count-command"), WRAPPER, { mode: 0o755 });
        this.resetCounts();
    }

    resetCounts(): void {
        writeFileSync(join(this.dir, "commands"), "");
        writeFileSync(join(this.dir, "sshd.log"), "");
    }

    /** Every remote command since the last reset, as the client sent it: the command line, a line break, its stdin. */
    commands(): string[] {
        const path = join(this.dir, "commands");
        if (!existsSync(path)) return [];
        return readFileSync(path, "utf8").split("\n").filter(Boolean).map((line) => Buffer.from(line, "base64").toString("utf8"));
    }

    /** Runs `work` and returns, with its result, the remote commands it sent. */
    async counted<T>(work: () => Promise<T>): Promise<{ result: T; commands: string[] }> {
        const before = this.commands().length;
        const result = await work();
        return { result, commands: this.commands().slice(before) };
    }
}

/** How many of `commands` run a virsh subcommand (as a quoted word: the provider's scripts quote every argument). */
export function commandsRunning(commands: string[], subcommand: string): number {
    return commands.filter((c) => c.includes(`'${subcommand}'`)).length;
}

export interface CountedSuite {
    env: RigEnv;
    sshd: CountingSshd;
    /** Through the counting sshd, with settings no other suite uses: a pooled connection of the suite's own. */
    connection: ConnectionInputs;
}

/**
 * The hooks of a suite counted on its own sshd: the rig up and `guests` reset before and after,
 * the sshd started and stopped, `files` removed after. `ready` receives what the tests use.
 */
export function countedSuiteHooks(options: { guests: string[]; port?: number; connectTimeout: number }, files: string[],
    ready: (suite: CountedSuite) => void): void {
    let sshd: CountingSshd | undefined;
    before(function () {
        this.timeout(300_000);
        const env = rigUp();
        for (const guest of options.guests) resetGuest(guest);
        sshd = new CountingSshd(env, options.port);
        sshd.start();
        ready({ env, sshd, connection: sshd.connection({ connectTimeout: options.connectTimeout }) });
    });
    after(function () {
        this.timeout(180_000);
        sshd?.stop();
        for (const guest of options.guests) resetGuestInBackground(guest);
        removeFiles(files);
    });
}
