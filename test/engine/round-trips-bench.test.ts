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

    it("engine: preview sends nothing, each run opens one SSH connection, up and destroy of 5 resources cost one read and one apply, refresh one read per guest", () => {
        for (const workload of [W1, W2]) {
            assert.equal(at(workload, "preview", "engine").commands, 0, `${workload}: preview without refresh`);
            assert.equal(at(workload, "preview", "engine").handshakes, 0);
            for (const step of ["attach", "refresh", "detach"]) assert.equal(at(workload, step, "engine").handshakes, 1, `${workload}: ${step}`);
        }
        assert.equal(at(W1, "attach", "engine").commands, 2);
        assert.equal(at(W1, "refresh", "engine").commands, 1);
        assert.equal(at(W1, "detach", "engine").commands, 2);
        assert.equal(at(W2, "refresh", "engine").commands, 3, "one read per guest, though the engine refreshes 8 at a time");
    });
});
