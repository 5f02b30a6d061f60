/**
 * The benchmark (bench/round-trips.ts) in its short form, as a smoke test: it runs every mode
 * once (floor, script, naive, provider, and the real `pulumi` CLI), and the server-side counts of
 * remote commands and SSH handshakes are asserted. Times are printed, never asserted.
 */
import assert from "node:assert/strict";
import { BENCH_PORT, runBenchmark, Row, summarize, Mode } from "../../bench/round-trips";
import { CountingSshd } from "../faults/counting-sshd";
import { resetGuest, resetGuestInBackground, RigEnv, rigUp } from "../rig/rig-env";
import { ensureCli } from "./engine-fixture";

describe("benchmark smoke run (bench/round-trips.ts --quick): counts per step, on our own sshd (127.0.0.1:2233)", function () {
    this.timeout(900_000);
    let env: RigEnv;
    let sshd: CountingSshd;
    let rows: Row[] = [];
    const W1 = "4 disks on one guest";
    const W2 = "3 guests x (2 disks + 1 NIC + DomainResources)";
    const at = (workload: string, step: string, mode: Mode): Row => {
        const row = rows.find((r) => r.workload === workload && r.step === step && r.mode === mode);
        assert.ok(row, `no sample for ${workload} / ${step} / ${mode}`);
        return row;
    };

    before(async function () {
        this.timeout(900_000);
        ensureCli();
        env = rigUp();
        for (const guest of ["pll-fault2", "pll-fault3", "pll-fault4"]) resetGuest(guest); // their earlier suites' background resets may still be booting
        sshd = new CountingSshd(env, BENCH_PORT);
        sshd.start();
        const report = await runBenchmark(env, sshd, { rounds: 1, quick: true });
        rows = summarize(report.samples);
        console.log(rows.map((r) => `    ${r.workload} | ${r.step} | ${r.mode}: ${(r.medianMs / 1000).toFixed(2)} s, ${r.commands} commands, ${r.handshakes} handshakes`).join("\n"));
    });

    after(function () {
        this.timeout(120_000);
        sshd.stop();
        for (const guest of ["pll-fault2", "pll-fault3", "pll-fault4"]) resetGuestInBackground(guest);
    });

    it("the plain modes send what they should: floor one exec per command on one connection, naive one handshake per command, script one exec", () => {
        const floor = at(W1, "attach", "floor");
        assert.equal(floor.commands, 3 + 4 + 4 + 3, "read, 4 stats, 4 attaches, read");
        assert.equal(floor.handshakes, 0);
        const naive = at(W1, "attach", "naive");
        assert.equal(naive.commands, floor.commands);
        assert.equal(naive.handshakes, naive.commands);
        assert.equal(at(W1, "attach", "script").commands, 1);
    });

    it("provider: one read and one apply for 4 disks + DomainResources, one read for their refresh, one read and one apply to detach", () => {
        assert.equal(at(W1, "attach", "provider").commands, 2);
        assert.equal(at(W1, "refresh", "provider").commands, 1);
        assert.equal(at(W1, "detach", "provider").commands, 2);
        assert.equal(at("disk cycle", "attach", "provider").commands, 2);
        assert.equal(at("disk cycle", "detach", "provider").commands, 2);
        assert.equal(at(W2, "attach", "provider").commands, 3 * 2, "per guest one read and one apply");
        assert.equal(at(W2, "refresh", "provider").commands, 3, "per guest one read");
        assert.ok(at("memory", "change", "provider").commands < at("memory", "change", "floor").commands);
    });

    // Through the engine, which operations share a batch depends on when the engine sends them (a
    // 30 ms gather gap, a read reused for 2 s): on a loaded machine they spread out. The exact counts
    // are the benchmark's numbers (printed above; one read and one apply for W1 on a quiet machine);
    // asserted here is what timing cannot change: batched, fewer than one read and one apply each.
    it("engine: preview sends nothing, each run opens one SSH connection, up, refresh and destroy batch the operations of a guest", () => {
        for (const workload of [W1, W2]) {
            assert.equal(at(workload, "preview", "engine").commands, 0, `${workload}: preview without refresh`);
            assert.equal(at(workload, "preview", "engine").handshakes, 0);
            for (const step of ["attach", "refresh", "detach"]) assert.equal(at(workload, step, "engine").handshakes, 1, `${workload}: ${step}`);
        }
        const disks = 4;
        for (const step of ["attach", "detach"]) {
            const { commands } = at(W1, step, "engine");
            assert.ok(commands >= 2 && commands < 2 * disks, `${W1} ${step}: ${commands} commands, batched (one read and one apply per disk would be ${2 * disks})`);
        }
        const refresh = at(W1, "refresh", "engine").commands;
        assert.ok(refresh >= 1 && refresh < disks, `${W1} refresh: ${refresh} reads, fewer than one per disk`);
        const guests = at(W2, "refresh", "engine").commands;
        assert.ok(guests >= 3 && guests < 3 * 4, `${W2} refresh: ${guests} reads, at least one per guest and fewer than one per resource`);
    });
});
