/**
 * runSettled (provider/virsh/unknown-outcome.ts) against a scripted host: when the answer to a
 * change is lost, the XML decides whether it runs again. And the retry budget of transient
 * libvirt failures. No SSH, no libvirt.
 */
import assert from "node:assert/strict";
import { HostUnreachableError } from "../../provider/errors";
import type { ExecResult, RemoteHost } from "../../provider/transport/ssh-host";
import { runSettled } from "../../provider/virsh/unknown-outcome";
import { Virsh } from "../../provider/virsh/virsh";

const SEPARATOR = "\n--pulumi-libvirt-live--\n";
const xml = (disks: string[]) => `<domain><name>g</name><memory unit='KiB'>524288</memory><vcpu>1</vcpu><devices>${
    disks.map((t) => `<disk type='file' device='disk'><source file='/i/${t}'/><target dev='${t}' bus='virtio'/></disk>`).join("")}</devices></domain>`;

/** A host where `attach-device` adds vdb to the XML; `lose` says which attach answers are lost. */
class ScriptedHost implements RemoteHost {
    readonly label = "root@test:22";
    disks: string[] = [];
    attaches = 0;
    constructor(private readonly lose: (attempt: number) => boolean) {}

    async exec(commandLine: string): Promise<ExecResult> {
        if (commandLine.includes("'attach-device'")) {
            this.attaches++;
            this.disks.push("vdb");
            if (this.lose(this.attaches)) {
                const error = new HostUnreachableError("the connection dropped while a command ran", { host: this.label }, "");
                error.outcomeUnknown = true;
                throw error;
            }
            return { stdout: "Device attached successfully", stderr: "", exitCode: 0 };
        }
        if (commandLine.includes("'dumpxml'")) {
            return { stdout: ["running", xml(this.disks), xml(this.disks)].join(SEPARATOR), stderr: "", exitCode: 0 };
        }
        throw new Error(`unexpected command ${commandLine}`);
    }
}

const landed = (target: string) => (s: { live?: { disks: Array<{ target?: unknown }> } }) => s.live?.disks.some((d) => d.target === target) === true;

describe("runSettled: a change whose answer was lost", () => {
    it("landed: it is not run again", async () => {
        const host = new ScriptedHost((n) => n === 1);
        await runSettled(new Virsh(host, "qemu:///system", "g", false), ["attach-device", "--domain=g"], {}, landed("vdb"));
        assert.equal(host.attaches, 1);
        assert.deepEqual(host.disks, ["vdb"]);
    });

    it("not landed: it runs once more", async () => {
        const host = new ScriptedHost((n) => n === 1);
        host.exec = ((original) => async (line: string) => {
            const result = await original(line).catch((e: unknown) => {
                host.disks.pop(); // this lost attach never happened
                throw e;
            });
            return result;
        })(host.exec.bind(host));
        await runSettled(new Virsh(host, "qemu:///system", "g", false), ["attach-device", "--domain=g"], {}, landed("vdb"));
        assert.equal(host.attaches, 2);
        assert.deepEqual(host.disks, ["vdb"]);
    });

    it("other errors pass through untouched", async () => {
        const host: RemoteHost = { label: "x", exec: async () => { throw new Error("boom"); } };
        await assert.rejects(runSettled(new Virsh(host, "qemu:///system", "g", false), ["attach-device"], {}, () => true), /boom/);
    });
});
