/**
 * Issue 14: text that reaches libvirt with white space at either end (pll-guest2). libvirt's XML is
 * read back trimmed, so a `serial: "DATA "` was stored as given, read back as "DATA", and every
 * `up` showed a replacement. Every such field of every resource is now refused by check, naming
 * the field and the value to write, before anything runs; the domain's XML stays byte-identical.
 */
import type {
    AttachedCdromInputs, AttachedCdromOutputs, AttachedDiskInputs, AttachedDiskOutputs, AttachedInterfaceInputs,
    AttachedInterfaceOutputs, ConnectionInputs, DomainResourcesInputs, DomainResourcesOutputs,
} from "../../provider/contract";
import { providers } from "../../provider/index";
import { GUEST2, Provider, resetGuest, resetGuestInBackground, RigEnv, rigConnection, rigUp, typed } from "../rig/rig-env";
import { assertXmlUnchanged, checkRefusal, DomainXmls, settledXmls } from "./security-fixtures";

const TRIMMED = /starts or ends with white space, which libvirt's XML does not keep \(every pulumi up would then show a replacement\)/;

describe("bad input: white space at either end of text that reaches libvirt is refused by check (pll-guest2)", function () {
    this.timeout(180_000);
    const disks = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    const nics = typed<AttachedInterfaceInputs, AttachedInterfaceOutputs>(providers.attachedInterface);
    const cdroms = typed<AttachedCdromInputs, AttachedCdromOutputs>(providers.attachedCdrom);
    const resources = typed<DomainResourcesInputs, DomainResourcesOutputs>(providers.domainResources);
    let env: RigEnv;
    let connection: ConnectionInputs;
    let baseline: DomainXmls;

    before(async function () {
        this.timeout(300_000);
        env = rigUp();
        resetGuest(GUEST2);
        connection = rigConnection(env);
        baseline = await settledXmls(GUEST2);
    });

    after(function () {
        assertXmlUnchanged(GUEST2, baseline, "after every refusal");
        resetGuestInBackground(GUEST2);
    });

    /** One refusal: check names `field` and says what to write instead. */
    async function refused<I, O>(provider: Provider<I, O>, inputs: I, field: string, fixed: string): Promise<void> {
        await checkRefusal(provider, inputs, field, [TRIMMED, new RegExp(`${field.replace(".", "\\.")}: .*: write ${JSON.stringify(fixed).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`)]);
    }

    it("AttachedDisk: source, serial, target", async () => {
        const disk = (extra: Partial<AttachedDiskInputs>): AttachedDiskInputs => ({ connection, domain: GUEST2, source: "/var/tmp/d.img", ...extra });
        await refused(disks, disk({ source: "/var/tmp/d.img " }), "source", "/var/tmp/d.img");
        await refused(disks, disk({ source: " /var/tmp/d.img" }), "source", "/var/tmp/d.img");
        await refused(disks, disk({ serial: "DATA " }), "serial", "DATA");
        await refused(disks, disk({ serial: " DATA" }), "serial", "DATA");
        await refused(disks, disk({ target: "vdb " }), "target", "vdb");
    });

    it("AttachedInterface: the bridge or network name, the model", async () => {
        const nic = (extra: Partial<AttachedInterfaceInputs>): AttachedInterfaceInputs => ({ connection, domain: GUEST2, type: "bridge", source: env.PLL_BRIDGE, ...extra });
        await refused(nics, nic({ source: `${env.PLL_BRIDGE} ` }), "source", env.PLL_BRIDGE);
        await refused(nics, nic({ type: "network", source: " default" }), "source", "default");
        await refused(nics, nic({ model: "virtio " }), "model", "virtio");
    });

    it("AttachedCdrom: source, target", async () => {
        const cdrom = (extra: Partial<AttachedCdromInputs>): AttachedCdromInputs => ({ connection, domain: GUEST2, ...extra });
        await refused(cdroms, cdrom({ source: "/var/tmp/a.iso " }), "source", "/var/tmp/a.iso");
        await refused(cdroms, cdrom({ target: " hdc" }), "target", "hdc");
    });

    it("every resource: the domain name and the libvirt URI", async () => {
        const domain = `${GUEST2} `;
        await refused(resources, { connection, domain, memory: "256MiB" }, "domain", GUEST2);
        await refused(disks, { connection, domain, source: "/var/tmp/d.img" }, "domain", GUEST2);
        await refused(nics, { connection, domain, type: "bridge", source: env.PLL_BRIDGE }, "domain", GUEST2);
        await refused(cdroms, { connection, domain }, "domain", GUEST2);
        await refused(resources, { connection: { ...connection, uri: "qemu:///system " }, domain: GUEST2, memory: "256MiB" }, "connection.uri", "qemu:///system");
    });
});
