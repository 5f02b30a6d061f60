/**
 * Shared by the attach-failure suites (issue 14): guest pll-fault2, reached through our own sshd on
 * 127.0.0.1:2231 (its virsh double only delays or holds an answer there; every failure is
 * libvirt's own), the guest reset before and after. Call inside a `describe`.
 */
import { resetGuest, resetGuestInBackground, RigEnv, rigUp } from "../rig/rig-env";
import { FaultSshd } from "./fault-env";

export const GUEST = "pll-fault2";
export const PORT = 2231;

export function attachFailureRig(): { env: () => RigEnv; sshd: () => FaultSshd } {
    let env: RigEnv | undefined;
    let sshd: FaultSshd | undefined;
    before(function () {
        this.timeout(300_000);
        env = rigUp();
        sshd = new FaultSshd(env, PORT);
        sshd.start();
        resetGuest(GUEST);
    });
    after(function () {
        this.timeout(120_000);
        sshd?.stop();
        resetGuestInBackground(GUEST);
    });
    const given = <T>(value: T | undefined): T => {
        if (value === undefined) throw new Error("the rig is not up yet (used outside a test)");
        return value;
    };
    return { env: () => given(env), sshd: () => given(sshd) };
}
