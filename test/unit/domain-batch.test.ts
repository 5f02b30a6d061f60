/**
 * The batch (provider/batch/) against a host that is a local POSIX shell with a `virsh` double on
 * its PATH (a domain whose disks live in a state file): members that arrive together share one
 * read and one apply; a transient failure reruns only the group it hit; a lost answer is settled
 * by the XML; a sleeping member does not hold the others back. No SSH, no libvirt.
 */
import assert from "node:assert/strict";
import { spawn } from "child_process";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { DomainSession, inBatchOf } from "../../provider/batch/domain-batch";
import { ChangeOrder } from "../../provider/batch/round";
import { applySettled } from "../../provider/batch/settled";
import { HostUnreachableError } from "../../provider/errors";
import type { ExecResult, RemoteHost } from "../../provider/transport/ssh-host";
import { Virsh } from "../../provider/virsh/virsh";

/** A domain whose disks are lines "TARGET SOURCE" in $STATE/disks; attach/detach edit them; every call is logged. */
const VIRSH_DOUBLE = `#!/bin/sh
sub=; target=
for a in "$@"; do case "$a" in --target=*) target=\${a#--target=} ;; -*) ;; *) [ -n "$sub" ] || sub=$a ;; esac; done
echo "$sub $target" >>"$STATE/calls"
case "$sub" in
  domstate) echo running ;;
  dumpxml)
    printf "<domain><name>g</name><memory unit='KiB'>524288</memory><vcpu>1</vcpu><devices>"
    while read -r t s; do printf "<disk type='file' device='disk'><source file='%s'/><target dev='%s' bus='virtio'/></disk>" "$s" "$t"; done <"$STATE/disks"
    printf "</devices></domain>\\n" ;;
  attach-device)
    xml=$(cat)
    t=$(printf '%s' "$xml" | sed -n "s/.*<target dev=\\"\\([a-z]*\\)\\".*/\\1/p")
    s=$(printf '%s' "$xml" | sed -n "s/.*<source file=\\"\\([^\\"]*\\)\\".*/\\1/p")
    if [ -s "$STATE/lock-$t" ]; then sed -i 1d "$STATE/lock-$t"; echo "error: Timed out during operation: cannot acquire state change lock" >&2; exit 1; fi
    # libvirtd dying during the call, as virsh 9.0 reports it: before the change (drop-) or after it (lost-).
    if [ -s "$STATE/drop-$t" ]; then sed -i 1d "$STATE/drop-$t"; printf 'error: Failed to attach device from /dev/stdin\nerror: End of file while reading data: Input/output error\n' >&2; exit 1; fi
    echo "$t $s" >>"$STATE/disks"
    if [ -s "$STATE/lost-$t" ]; then sed -i 1d "$STATE/lost-$t"; printf 'error: Disconnected from test:///default due to end of file\nerror: Cannot recv data: Connection reset by peer\n' >&2; exit 1; fi
    echo "Device attached successfully" ;;
  *) echo "error: unexpected $sub" >&2; exit 1 ;;
esac
`;

/** Runs each exec with sh; `lose(n)` makes exec number n lose its answer after it ran. */
class LocalShellHost implements RemoteHost {
    readonly label = "root@local-shell:22";
    execs: string[] = [];
    lose: (n: number) => boolean = () => false;

    constructor(private readonly dir: string) {}

    exec(commandLine: string, stdin?: string): Promise<ExecResult> {
        this.execs.push(commandLine);
        const n = this.execs.length;
        return new Promise((resolve, reject) => {
            const child = spawn("sh", ["-c", commandLine], { env: { ...process.env, PATH: `${this.dir}:${process.env.PATH}`, STATE: this.dir } });
            child.stdin.end(stdin);
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (d: Buffer) => { stdout += d.toString(); });
            child.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
            child.on("close", (code) => {
                if (!this.lose(n)) return resolve({ stdout, stderr, exitCode: code ?? 1 });
                const error = new HostUnreachableError("the connection dropped while a command ran", { host: this.label }, "");
                error.outcomeUnknown = true;
                reject(error);
            });
        });
    }
}

const diskXml = (target: string, source: string) =>
    `<disk type="file" device="disk"><source file="${source}"/><target dev="${target}" bus="virtio"/></disk>`;

/** What a disk create does: read, then attach + read back, settled by the XML. */
async function attachDisk(session: DomainSession, target: string): Promise<string[]> {
    await session.round({});
    const request = { steps: [{ args: ["attach-device", "--domain=g", "--file=/dev/stdin"], stdin: diskXml(target, `/img/${target}`) }], order: ChangeOrder.Addition };
    const round = await applySettled(session, request, (s) => s.config.disks.some((d) => d.target === target));
    const failure = round.failure(request);
    if (failure) throw failure;
    return round.snapshot().config.disks.map((d) => String(d.target));
}

describe("domain batch: one read and one apply for operations that arrive together", () => {
    let dir: string;
    let host: LocalShellHost;
    let virsh: Virsh;
    let key: string;
    const calls = () => readFileSync(join(dir, "calls"), "utf8").split("\n").filter(Boolean);

    beforeEach(() => {
        dir = mkdtempSync(join(tmpdir(), "pll-batch-"));
        writeFileSync(join(dir, "virsh"), VIRSH_DOUBLE, { mode: 0o755 });
        writeFileSync(join(dir, "disks"), "");
        writeFileSync(join(dir, "calls"), "");
        host = new LocalShellHost(dir);
        virsh = new Virsh(host, "test:///default", "g", false, 30);
        key = `local/${dir}`;
    });

    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it("three members together: two execs in all, each member sees its own disk in the read back", async () => {
        const results = await Promise.all(["vdb", "vdc", "vdd"].map((t) => inBatchOf(key, virsh, (s) => attachDisk(s, t))));
        assert.equal(host.execs.length, 2);
        for (const [i, t] of ["vdb", "vdc", "vdd"].entries()) assert.ok(results[i].includes(t));
        assert.equal(calls().filter((c) => c.startsWith("attach-device")).length, 3);
    });

    it("a member that arrives while a batch runs goes in the next batch", async () => {
        const first = inBatchOf(key, virsh, (s) => attachDisk(s, "vdb"));
        await new Promise((r) => setTimeout(r, 400));
        const second = inBatchOf(key, virsh, (s) => attachDisk(s, "vdc"));
        await Promise.all([first, second]);
        assert.equal(host.execs.length, 4, "two batches of read + apply");
    });

    it("a transient failure (held job lock) reruns only the group it hit, once the backoff passed", async () => {
        appendFileSync(join(dir, "lock-vdc"), "1\n");
        const results = await Promise.allSettled(["vdb", "vdc"].map((t) => inBatchOf(key, virsh, (s) => attachDisk(s, t))));
        assert.deepEqual(results.map((r) => r.status), ["fulfilled", "fulfilled"]);
        assert.equal(host.execs.length, 3, "read, apply, the retry of vdc's group");
        assert.deepEqual(calls().filter((c) => c.startsWith("attach-device")), ["attach-device ", "attach-device ", "attach-device "]);
        assert.equal(readFileSync(join(dir, "disks"), "utf8").trim().split("\n").length, 2, "each disk once");
    });

    it("a lost answer: the XML read after reconnecting says the attach landed, so it is not run again", async () => {
        host.lose = (n) => n === 2;
        const targets = await inBatchOf(key, virsh, (s) => attachDisk(s, "vdb"));
        assert.deepEqual(targets, ["vdb"]);
        assert.equal(calls().filter((c) => c.startsWith("attach-device")).length, 1);
    });

    it("a lost answer before the change ran: the XML says it did not land, so it runs once more", async () => {
        const original = host.exec.bind(host);
        let n = 0;
        // The second exec (the apply) never reaches the host, but its answer is lost all the same.
        host.exec = (line, stdin) => (++n === 2 ? Promise.reject(Object.assign(
            new HostUnreachableError("the connection dropped while a command ran", { host: host.label }, ""), { outcomeUnknown: true })) : original(line, stdin));
        const targets = await inBatchOf(key, virsh, (s) => attachDisk(s, "vdb"));
        assert.deepEqual(targets, ["vdb"]);
        assert.equal(calls().filter((c) => c.startsWith("attach-device")).length, 1, "ran once, after the lost exec");
    });

    it("libvirtd dies during an attach that landed: the XML read back says so, the attach is not run again", async () => {
        appendFileSync(join(dir, "lost-vdb"), "1\n");
        const targets = await inBatchOf(key, virsh, (s) => attachDisk(s, "vdb"));
        assert.deepEqual(targets, ["vdb"]);
        assert.equal(calls().filter((c) => c.startsWith("attach-device")).length, 1, "no rerun without a read back");
        assert.equal(readFileSync(join(dir, "disks"), "utf8").trim().split("\n").length, 1, "attached once");
    });

    it("libvirtd dies during an attach that did not land: read back, then run once more", async () => {
        appendFileSync(join(dir, "drop-vdb"), "1\n");
        const targets = await inBatchOf(key, virsh, (s) => attachDisk(s, "vdb"));
        assert.deepEqual(targets, ["vdb"]);
        assert.equal(calls().filter((c) => c.startsWith("attach-device")).length, 2, "the dropped call, then the rerun");
        assert.equal(host.execs.length, 3, "read, apply (dropped, read back in the same exec), the rerun");
    });

    it("refresh reads: a later wave for other resources reuses the read; a resource read again, or after a change, is read anew", async () => {
        const refresh = (id: string) => inBatchOf(key, virsh, (s) => s.round({ refreshOf: id }));
        await Promise.all([refresh("a"), refresh("b")]);
        assert.equal(host.execs.length, 1, "one exec for the first wave");
        await new Promise((r) => setTimeout(r, 300));
        await Promise.all([refresh("c"), refresh("d")]);
        assert.equal(host.execs.length, 1, "the next wave (other resources) reuses it");
        await refresh("a");
        assert.equal(host.execs.length, 2, "a resource read a second time is read anew");
        await inBatchOf(key, virsh, (s) => attachDisk(s, "vdb"));
        const [round] = await Promise.all([refresh("e")]);
        assert.equal(host.execs.length, 5, "after a change (read + apply) the refresh reads anew");
        assert.deepEqual(round.snapshot().config.disks.map((d) => d.target), ["vdb"]);
    });

    it("a sleeping member does not hold back the others' rounds", async () => {
        const order: string[] = [];
        const sleeper = inBatchOf(key, virsh, async (s) => {
            await s.round({});
            await s.sleep(1500);
            order.push("sleeper woke");
            await s.round({});
        });
        const busy = inBatchOf(key, virsh, async (s) => {
            for (let i = 0; i < 3; i++) {
                await s.round({});
                order.push(`busy round ${i + 1}`);
            }
        });
        await Promise.all([sleeper, busy]);
        assert.deepEqual(order, ["busy round 1", "busy round 2", "busy round 3", "sleeper woke"], "the busy member finished while the other slept");
    });
});
