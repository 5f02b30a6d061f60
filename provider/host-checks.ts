/**
 * Named checks that need the host: is this path a file or a block device, does this bridge exist,
 * is this MAC used by another domain. Each throws an InputError that names the field and the fix.
 */
import { InputError } from "./errors";
import type { Virsh } from "./virsh/virsh";

export type SourceKind = "file" | "block";

export async function sourceKindOnHost(virsh: Virsh, path: string, field: string): Promise<SourceKind> {
    const result = await virsh.hostCommand(["stat", "-L", "-c", "%F", "--", path]);
    const kind = result.stdout.trim();
    if (result.exitCode !== 0) {
        throw new InputError(`${field} ${path} does not exist on the host`, virsh.context(field, result.stderr.trim()),
            `create it first (qemu-img create -f raw ${path} 10G) or fix the path`);
    }
    if (kind === "block special file") return "block";
    if (kind === "regular file" || kind === "regular empty file") return "file";
    throw new InputError(`${field} ${path} is a ${kind}, not a file or block device`, virsh.context(field), "point it at an image file or a block device");
}

export async function checkBridgeExists(virsh: Virsh, bridge: string): Promise<void> {
    const result = await virsh.hostCommand(["test", "-d", `/sys/class/net/${bridge}/bridge`]);
    if (result.exitCode !== 0) {
        throw new InputError(`source: no Linux bridge named '${bridge}' on the host`, virsh.context(`bridge ${bridge}`),
            `create it (ip link add ${bridge} type bridge && ip link set ${bridge} up) or use type "network" for a libvirt network`);
    }
}

export async function checkNetworkExists(virsh: Virsh, network: string): Promise<void> {
    const result = await virsh.attempt(["net-info", `--network=${network}`]);
    if (result.exitCode !== 0) {
        throw new InputError(`source: no libvirt network named '${network}'`, virsh.context(`network ${network}`, result.stderr.trim()),
            "`virsh net-list --all` lists them; or use type \"bridge\" for a host bridge");
    }
}

/** The domain (other than ours) whose interface has this MAC, if any. */
export async function domainUsingMac(virsh: Virsh, mac: string): Promise<string | undefined> {
    const names = (await virsh.run(["list", "--all", "--name"])).split("\n").map((n) => n.trim()).filter(Boolean);
    for (const name of names.filter((n) => n !== virsh.domain)) {
        const list = await virsh.attempt(["domiflist", `--domain=${name}`]);
        if (list.stdout.toLowerCase().includes(mac.toLowerCase())) return name;
    }
    return undefined;
}
