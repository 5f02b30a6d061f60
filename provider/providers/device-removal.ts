/**
 * Detaching is a request the guest must answer: virsh exits 0 even when a guest ignores it. So
 * after the detach we watch the live XML until the device is gone, within a bound, and say
 * plainly when it is not. The XML decides, not the exit code: a detach raced by another (an
 * earlier attempt whose answer was lost) is done when the device is gone.
 */
import type { DomainSession } from "../batch/domain-batch";
import { warn } from "../engine-log";
import { ChangeOrder } from "../batch/round";
import { pollUntil } from "../batch/poll";
import { applySettled } from "../batch/settled";
import { DeviceStillAttachedError } from "../errors";
import type { DomainSnapshot } from "../virsh/domain-snapshot";
import type { Command } from "../virsh/virsh";
import { Ownership, warnOfStranger } from "./device-stranger";

export interface DeviceLookup {
    /** "disk vdb", "interface 52:54:00:…": for messages. */
    label: string;
    present: (snapshot: DomainSnapshot, where: "live" | "config") => boolean;
    /** virsh arguments that detach it, before --live/--config. */
    detachArgs: string[];
    /** Where a half words the device otherwise (a NIC's type in the live XML), its own arguments. */
    detachArgsIn?: (snapshot: DomainSnapshot, where: "live" | "config") => string[];
    /** For a disk or drive: its target and what is its own there; another device there is left as it is, and said. */
    owned?: { target: string; owner: Ownership };
    /** Said when the domain is gone: what else was left as it is (a disk's image). */
    keptWhenDomainGone?: string;
}

export const DEFAULT_DETACH_TIMEOUT_SECONDS = 30;
const POLL_INTERVAL_MS = 500;

const stillLive = (device: DeviceLookup) => (s: DomainSnapshot): boolean => s.running && device.present(s, "live");

/**
 * The domain as it is now; undefined when it no longer exists (undefined by hand or by another
 * stack): its devices went with it, so removing one is done, and the engine's log says so. Any
 * other failure to read the domain stays an error.
 */
export async function domainUnlessGone(session: DomainSession, device: Pick<DeviceLookup, "label" | "keptWhenDomainGone">): Promise<DomainSnapshot | undefined> {
    const snapshot = (await session.round({})).snapshotIfExists();
    if (snapshot) return snapshot;
    const { virsh } = session;
    await warn(`domain '${virsh.domain}' on host ${virsh.host.label} no longer exists: ${device.label} is taken as removed with it` +
        `${device.keptWhenDomainGone ? `; ${device.keptWhenDomainGone}` : ""}`);
    return undefined;
}

/** What virsh says when its own lookup in the domain's XML finds no such device (nothing was changed). */
const DEVICE_NOT_THERE = /No disk found whose source path or target is|No interface with MAC address .* was found|No interface found/i;

/** Detaches the device from the config and the running guest; returns the domain once it is gone. */
export async function detachAndWait(session: DomainSession, device: DeviceLookup, timeoutSeconds = DEFAULT_DETACH_TIMEOUT_SECONDS): Promise<DomainSnapshot> {
    return detachFrom(session, (await session.round({})).snapshot(), device, timeoutSeconds);
}

/** A device's delete: detached and released, or nothing to do when its domain is gone (false then). */
export async function removeDevice(session: DomainSession, device: DeviceLookup, timeoutSeconds = DEFAULT_DETACH_TIMEOUT_SECONDS): Promise<boolean> {
    const before = await domainUnlessGone(session, device);
    if (before && device.owned) await warnOfStranger(session.virsh, before, device.owned.target, device.owned.owner, `${device.label} is detached only from a half that holds it`);
    if (before) await detachFrom(session, before, device, timeoutSeconds);
    return before !== undefined;
}

async function detachFrom(session: DomainSession, before: DomainSnapshot, device: DeviceLookup, timeoutSeconds: number): Promise<DomainSnapshot> {
    const inConfig = device.present(before, "config");
    const args = (where: "live" | "config") => [...(device.detachArgsIn?.(before, where) ?? device.detachArgs), `--${where}`];
    const steps: Command[] = [
        ...(inConfig ? [{ args: args("config") }] : []),
        ...(stillLive(device)(before) ? [{ args: args("live") }] : []),
    ];
    if (steps.length === 0) return before;
    const request = { steps, order: ChangeOrder.Removal };
    const round = await applySettled(session, request, (s) => !device.present(s, "config"));
    const now = round.snapshot();
    const failure = round.failure(request, { device: device.label });
    // A failed config detach is an error even when the XML no longer shows the device: libvirt may
    // have dropped it from its definition, then failed to save the file, and it would come back.
    // Unless virsh found no such device in the XML at all: another detach got there first (one whose
    // answer was lost, run on by its orphaned session), and the XML read after the step decides.
    const configStep = inConfig ? round.steps[0] : undefined;
    if (configStep?.ran && configStep.exitCode !== 0 && !DEVICE_NOT_THERE.test(configStep.stderr)) throw failure;
    if (device.present(now, "config")) {
        throw new DeviceStillAttachedError(`${device.label} is still in the persistent config after the detach`,
            session.virsh.context(device.label), "run pulumi refresh, then the same pulumi command again");
    }
    // A repeated request for a device the guest is still releasing may fail; the live XML decides.
    const read = async () => (await session.round({})).snapshot();
    const released = await pollUntil(session, { seconds: timeoutSeconds, intervalMs: POLL_INTERVAL_MS }, now, read, (s) => !stillLive(device)(s));
    if (released.done) return released.value;
    throw new DeviceStillAttachedError(
        `${device.label} is still attached to the running guest: it did not release it within ${timeoutSeconds} s. ` +
        "It is gone from the persistent config, so it will not come back after a reboot",
        session.virsh.context(device.label, failure?.context.stderr),
        "make the guest release it (unmount or down it; the guest needs ACPI PCI hot-unplug, e.g. the acpiphp driver), " +
        "then run the same pulumi command again; or reboot the domain. The resource stays in the stack until the device is gone");
}
