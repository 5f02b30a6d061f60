/**
 * Consecutive attach/detach cycles (100 in the test command, PLL_LOAD_CYCLES to change; the benchmark runs 200) of one disk on pll-fault1 through the provider, over our
 * own sshd on 127.0.0.1:2226 (fault-env.ts), so the server-side counts are the provider's alone:
 * no connection or session leaks (one pooled connection during, none after closeAllHosts, no
 * session process left), memory reported at start and end. The measurement itself is
 * bench/attach-detach-cycles.ts, which prints the same numbers. Long: PLL_SKIP_LONG=1 skips it.
 */
import assert from "node:assert/strict";
import { closeAllHosts } from "../../provider/index";
import { formatReport, runCycles } from "../../bench/attach-detach-cycles";
import { configXml, disksIn, liveXml, resetGuest, resetGuestInBackground, RigEnv, rigUp, sleep } from "../rig/rig-env";
import { BESIDE_FAULT_PORT, FaultSshd, longSuitesSkipped } from "../faults/fault-env";

const GUEST = "pll-fault1";
const CYCLES = Number(process.env.PLL_LOAD_CYCLES ?? 100);

describe(`load: ${CYCLES} attach/detach cycles on one guest (${GUEST}, own sshd on ${BESIDE_FAULT_PORT})`, function () {
    this.timeout(30 * 60 * 1000);
    let env: RigEnv;
    let sshd: FaultSshd;

    before(function () {
        if (longSuitesSkipped()) this.skip();
        env = rigUp();
        sshd = new FaultSshd(env, BESIDE_FAULT_PORT);
        sshd.start();
        resetGuest(GUEST);
    });

    after(function () {
        if (longSuitesSkipped()) return;
        sshd.stop();
        resetGuestInBackground(GUEST);
    });

    it(`${CYCLES} cycles: all succeed, one connection throughout, no session left, nothing left attached; RSS start/end reported`, async () => {
        const baseDisks = disksIn(liveXml(GUEST)).length;
        const report = await runCycles(env, sshd, GUEST, CYCLES, (n) => console.log(`      ${n}/${CYCLES}`));
        console.log(formatReport(report).replace(/^/gm, "      "));
        assert.equal(report.server.maxDuring.sshdChildren, 1, "the provider kept one pooled connection");
        assert.ok(report.server.maxDuring.established <= 1, "one TCP connection at most");
        assert.equal(report.server.after.sshdChildren, 1, "still one connection (pooled) at the end");
        assert.equal(report.server.after.sessionProcesses, 0, "no session left open on the server");
        assert.equal(disksIn(liveXml(GUEST)).length, baseDisks, "nothing left attached live");
        assert.equal(disksIn(configXml(GUEST)).length, baseDisks, "nothing left in the config");
        // Flat: a leak of even a few KiB per cycle would show over the cycles; RSS also carries allocator slack.
        assert.ok(report.heapMiB.ratio < 1.5, `heap ratio ${report.heapMiB.ratio.toFixed(3)}`);
        assert.ok(report.rssMiB.ratio < 1.5, `RSS ratio ${report.rssMiB.ratio.toFixed(3)}`);
        closeAllHosts();
        await sleep(500);
        const closed = sshd.sessions();
        console.log(`      server after closeAllHosts: ${JSON.stringify(closed)}`);
        assert.deepEqual({ connections: closed.sshdChildren, sessions: closed.sessionProcesses, established: closed.established },
            { connections: 0, sessions: 0, established: 0 }, "closeAllHosts ends the connection on the server too");
    });
});
