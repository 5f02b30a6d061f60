/**
 * Detaching is a request the guest must answer: virsh exits 0 even when a guest ignores it. So
 * after the detach we watch the live XML until the device is gone, within a bound, and say
 * plainly when it is not.
 */
import { DeviceStillAttachedError } from "../errors";
import { pollUntil } from "./virsh";
import type { Virsh } from "./virsh";
import { DomainSnapshot, readSnapshot } from "./domain-snapshot";
import { isOutcomeUnknown, runSettled } from "./unknown-outcome";

export interface DeviceLookup {
    /** "disk vdb", "interface 52:54:00:…": for messages. */
    label: string;
    present: (snapshot: DomainSnapshot, where: "live" | "config") => boolean;
    /** virsh arguments that detach it, before --live/--config. */
    detachArgs: string[];
}

export const DEFAULT_DETACH_TIMEOUT_SECONDS = 30;

export async function detachAndWait(virsh: Virsh, device: DeviceLookup, timeoutSeconds = DEFAULT_DETACH_TIMEOUT_SECONDS): Promise<void> {
    const before = await readSnapshot(virsh);
    const inLive = before.running && device.present(before, "live");
    if (device.present(before, "config")) {
        await runSettled(virsh, [...device.detachArgs, "--config"], { device: device.label }, (s) => !device.present(s, "config"));
    }
    if (!inLive) return;
    const request = await virsh.attempt([...device.detachArgs, "--live"]).catch((error: unknown) => {
        // The answer was lost: the live XML below decides, as it does for a guest that is slow to release.
        if (isOutcomeUnknown(error)) return { exitCode: 0, stdout: "", stderr: "" };
        throw error;
    });
    // A repeated request for a device the guest is still releasing may fail; the XML decides.
    const gone = await pollUntil(async () => {
        const now = await readSnapshot(virsh);
        return now.running && device.present(now, "live") ? undefined : true;
    }, timeoutSeconds * 1000);
    if (gone) return;
    const stderr = request.exitCode === 0 ? undefined : request.stderr.trim();
    throw new DeviceStillAttachedError(
        `${device.label} is still attached to the running guest: it did not release it within ${timeoutSeconds} s. ` +
        "It is gone from the persistent config, so it will not come back after a reboot",
        virsh.context(device.label, stderr),
        "make the guest release it (unmount or down it; the guest needs ACPI PCI hot-unplug, e.g. the acpiphp driver), " +
        "then run the same pulumi command again; or reboot the domain. The resource stays in the stack until the device is gone");
}
