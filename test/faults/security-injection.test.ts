/**
 * Command injection, on pll-fault1 and a throwaway domain with a hostile name. Domain names, file
 * paths, ISO paths, bridge names, serials and targets holding spaces, quotes, $(…), backticks, ;,
 * |, &&, a leading '-' or non-ASCII either work as literal values (the XML holds exactly them) or
 * are refused before anything changes. Each payload would create a canary file if any shell ran
 * it; none may appear. NUL and line breaks are refused in every text field.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "child_process";
import { mkdirSync, rmSync } from "fs";
import { dirname, join } from "path";
import type {
    AttachedCdromInputs, AttachedCdromOutputs, AttachedDiskInputs, AttachedDiskOutputs, AttachedInterfaceInputs,
    AttachedInterfaceOutputs, ConnectionInputs, DomainResourcesInputs, DomainResourcesOutputs,
} from "../../provider/contract";
import { InputError, providers, VirshError } from "../../provider/index";
import {
    createIso, currentMemoryKiB, disksIn, interfacesIn, rejectsWith, resetGuest, resetGuestInBackground, RigEnv, rigConnection, rigUp, typed,
} from "../rig/rig-env";
import {
    assertXmlUnchanged, settledXmls, Canary, checkRefusal, defineThrowaway, domainXmls, DomainXmls, FAULT_GUEST, refreshThenPreviewAgree, undefineThrowaway,
} from "./security-fixtures";

/** The XML's escaping undone, so a path read back compares with the path given. */
function unescapeXml(text: string | undefined): string | undefined {
    return text?.replace(/&(#x?[0-9a-fA-F]+|apos|quot|lt|gt|amp);/g, (_, e: string) => {
        const named: Record<string, string> = { apos: "'", quot: "\"", lt: "<", gt: ">", amp: "&" };
        if (e in named) return named[e];
        return String.fromCodePoint(e.startsWith("#x") ? parseInt(e.slice(2), 16) : Number(e.slice(1)));
    });
}

describe("security: command injection (pll-fault1 + a throwaway domain)", function () {
    this.timeout(300_000);
    const resources = typed<DomainResourcesInputs, DomainResourcesOutputs>(providers.domainResources);
    const disks = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    const nics = typed<AttachedInterfaceInputs, AttachedInterfaceOutputs>(providers.attachedInterface);
    const cdroms = typed<AttachedCdromInputs, AttachedCdromOutputs>(providers.attachedCdrom);
    const canary = new Canary();
    let env: RigEnv;
    let connection: ConnectionInputs;
    let imageDir = "";
    let hostileDomain = "";
    let baseline: DomainXmls;
    /** Real bridges with hostile names (Linux allows up to 15 bytes, no '/', ':' or space). */
    const bridges: string[] = [];

    /** A raw image at `${imageDir}/${name}.img` (directories made for any '/' the payload holds). */
    const hostileImage = (name: string): string => {
        const path = join(imageDir, `${name}.img`);
        mkdirSync(dirname(path), { recursive: true });
        execFileSync("qemu-img", ["create", "-q", "-f", "raw", path, "8M"], { stdio: ["ignore", "ignore", "pipe"] });
        return path;
    };

    before(async function () {
        this.timeout(300_000);
        env = rigUp();
        resetGuest(FAULT_GUEST);
        connection = rigConnection(env);
        imageDir = join(env.PLL_IMAGES, `sec-injection-${process.pid}`);
        mkdirSync(imageDir, { recursive: true });
        const c = canary.short;
        hostileDomain = `-pll-sec 'q' "d" $(touch ${c}1)\`touch ${c}2\`; touch ${c}3 | touch ${c}4 && touch ${c}5 ü名`;
        defineThrowaway(hostileDomain);
        bridges.push(`$(>${c}6)`, `\`>${c}7\`;|'"`, "brü-名", "-pllsecbr");
        for (const bridge of bridges) {
            assert.ok(Buffer.byteLength(bridge) <= 15, `bridge name ${bridge} fits IFNAMSIZ`);
            // A run cut off before its `after` leaves the bridges behind: start from none.
            spawnSync("ip", ["link", "del", "dev", bridge]);
            execFileSync("ip", ["link", "add", "name", bridge, "type", "bridge"]);
            execFileSync("ip", ["link", "set", "dev", bridge, "up"]);
        }
        baseline = await settledXmls(FAULT_GUEST);
    });

    after(function () {
        this.timeout(120_000);
        undefineThrowaway(hostileDomain);
        for (const bridge of bridges) spawnSync("ip", ["link", "del", "dev", bridge], { stdio: "ignore" });
        canary.cleanup();
        // Anything a failed test left attached to pll-fault1 goes with the images.
        resetGuestInBackground(FAULT_GUEST);
        rmSync(imageDir, { recursive: true, force: true });
    });

    afterEach(function () {
        canary.assertAbsent(this.currentTest?.title ?? "test");
    });

    it("hostile unknown domain names are 'not found', run nothing, and change nothing", async () => {
        for (const [label, name] of Object.entries(canary.payloads())) {
            const error = await rejectsWith(resources.create({ connection, domain: name, memory: "200MiB" }), VirshError, [
                /cannot read the domain/, /failed to get domain/, /virsh list --all/,
            ]);
            assert.ok(error.message.includes(`domain '${name}'`), `${label}: the message names the domain literally: ${error.message}`);
            await rejectsWith(disks.create({ connection, domain: name, source: "/nonexistent.img" }), VirshError, [/failed to get domain/]);
        }
        assertXmlUnchanged(FAULT_GUEST, baseline, "unknown hostile domains");
    });

    it("a domain whose name is hostile (leading '-', quotes, $(…), `…`, ;, |, &&, ü名) is managed literally", async () => {
        const res: DomainResourcesInputs = { connection, domain: hostileDomain, memory: "192MiB" };
        const created = await resources.create(res);
        assert.equal(created.outs.state, "shut off");
        assert.equal(currentMemoryKiB(domainXmls(hostileDomain).config), 192 * 1024);
        await refreshThenPreviewAgree(resources, created.id, created.outs, res);

        const image = hostileImage(`dom ${canary.payloads()["$(…)"]}`);
        const disk: AttachedDiskInputs = { connection, domain: hostileDomain, source: image };
        const attached = await disks.create(disk);
        assert.equal(unescapeXml(disksIn(domainXmls(hostileDomain).config).find((d) => d.target === attached.outs.target)?.source), image);
        await refreshThenPreviewAgree(disks, attached.id, attached.outs, disk);
        await disks.delete(attached.id, attached.outs);
        assert.ok(!disksIn(domainXmls(hostileDomain).config).some((d) => d.target === attached.outs.target));

        const nic: AttachedInterfaceInputs = { connection, domain: hostileDomain, type: "bridge", source: env.PLL_BRIDGE };
        const plugged = await nics.create(nic);
        assert.equal(interfacesIn(domainXmls(hostileDomain).config).find((i) => i.mac === plugged.outs.mac)?.bridge, env.PLL_BRIDGE);
        await refreshThenPreviewAgree(nics, plugged.id, plugged.outs, nic);
        await nics.delete(plugged.id, plugged.outs);
        assert.equal(interfacesIn(domainXmls(hostileDomain).config).length, 0);
        assertXmlUnchanged(FAULT_GUEST, baseline, "work on the hostile domain");
    });

    it("hostile file paths are literal disk sources on the running guest (attach, refresh, detach)", async () => {
        for (const [label, payload] of Object.entries(canary.pathPayloads())) {
            const image = hostileImage(payload);
            const inputs: AttachedDiskInputs = { connection, domain: FAULT_GUEST, source: image };
            const { id, outs } = await disks.create(inputs);
            const now = domainXmls(FAULT_GUEST);
            for (const [where, xml] of [["live", now.live], ["config", now.config]] as const) {
                const disk = disksIn(xml).find((d) => d.target === outs.target);
                assert.equal(unescapeXml(disk?.source), image, `${label}: the ${where} XML holds the path literally`);
            }
            assert.equal(outs.source, image);
            await refreshThenPreviewAgree(disks, id, outs, inputs);
            await disks.delete(id, outs);
            canary.assertAbsent(`disk path with ${label}`);
        }
        assertXmlUnchanged(FAULT_GUEST, baseline, "after every hostile disk came and went");
    });

    it("a hostile ISO path is literal CD-ROM media (insert, refresh, eject)", async () => {
        const iso = join(imageDir, `${canary.payloads()["&&"]} ${canary.payloads()["single quote"]}.iso`);
        const plain = createIso(env, "sec-injection");
        execFileSync("mv", [plain, iso]);
        const inputs: AttachedCdromInputs = { connection, domain: FAULT_GUEST, target: "hdc", source: iso };
        const { id, outs } = await cdroms.create(inputs);
        assert.equal(unescapeXml(disksIn(domainXmls(FAULT_GUEST).live).find((d) => d.target === "hdc")?.source), iso);
        await refreshThenPreviewAgree(cdroms, id, outs, inputs);
        await cdroms.delete(id, outs);
        // libvirt leaves `type='raw'` and `<source index=…/>` on an ejected live drive: the config is the identity check here.
        const now = await settledXmls(FAULT_GUEST);
        assert.equal(now.config, baseline.config, "the config is back to the baseline after the eject");
        assert.equal(disksIn(now.live).find((d) => d.target === "hdc")?.source, undefined, "the live drive is empty");
        baseline = now;
    });

    it("hostile bridge names: unknown ones are refused, real ones ($(…), `…`, ;|'\", ü名, leading -; at most 15 bytes) work literally", async () => {
        for (const [label, name] of Object.entries(canary.payloads())) {
            await rejectsWith(nics.create({ connection, domain: FAULT_GUEST, type: "bridge", source: name }), InputError,
                [/source: no Linux bridge named/, /ip link add/], ).catch((e: Error) => assert.fail(`${label}: ${e.message}`));
        }
        assertXmlUnchanged(FAULT_GUEST, baseline, "unknown hostile bridges");
        for (const bridge of bridges) {
            const inputs: AttachedInterfaceInputs = { connection, domain: FAULT_GUEST, type: "bridge", source: bridge };
            const { id, outs } = await nics.create(inputs);
            const now = domainXmls(FAULT_GUEST);
            for (const xml of [now.live, now.config]) {
                assert.equal(unescapeXml(interfacesIn(xml).find((i) => i.mac === outs.mac)?.bridge), bridge, `bridge ${bridge} literally`);
            }
            await refreshThenPreviewAgree(nics, id, outs, inputs);
            await nics.delete(id, outs);
        }
        assertXmlUnchanged(FAULT_GUEST, baseline, "after the NICs on hostile bridges came and went");
    });

    it("serials: hostile ones are refused by check; the allowed punctuation is kept literally", async () => {
        for (const serial of ["$(touch x)", "`id`", "a;b", "a|b", "a&&b", "'q'", "\"q\"", "ü"]) {
            await checkRefusal(disks, { connection, domain: FAULT_GUEST, source: "/x.img", serial }, "serial", [/serial: may hold only letters, digits/]);
        }
        const image = hostileImage("serial");
        const inputs: AttachedDiskInputs = { connection, domain: FAULT_GUEST, source: image, serial: "-A b.c+d_e" };
        const { id, outs } = await disks.create(inputs);
        assert.match(domainXmls(FAULT_GUEST).config, /<serial>-A b\.c\+d_e<\/serial>/);
        await refreshThenPreviewAgree(disks, id, outs, inputs);
        await disks.delete(id, outs);
        assertXmlUnchanged(FAULT_GUEST, baseline, "serial disk came and went");
    });

    it("hostile targets are refused before anything changes", async () => {
        const image = hostileImage("target");
        for (const target of Object.values(canary.payloads()).map((p) => `vd${p}`)) {
            await rejectsWith(disks.create({ connection, domain: FAULT_GUEST, source: image, target }), InputError, [/does not fit bus virtio/]);
            await rejectsWith(cdroms.create({ connection, domain: FAULT_GUEST, source: image, target }), InputError, [/does not fit bus scsi/]);
        }
        assertXmlUnchanged(FAULT_GUEST, baseline, "hostile targets");
    });

    it("NUL and line breaks are refused by check in every text field, and by the provider if check is skipped", async () => {
        for (const bad of ["a\nb", "a\rb", "a\0b"]) {
            await checkRefusal(resources, { connection, domain: bad }, "domain", [/domain: contains a NUL or line break/]);
            await checkRefusal(disks, { connection, domain: FAULT_GUEST, source: `/x${bad}.img` }, "source", [/source: contains a NUL or line break/]);
            await checkRefusal(nics, { connection, domain: FAULT_GUEST, type: "bridge", source: bad }, "source", [/source: contains a NUL or line break/]);
            await checkRefusal(cdroms, { connection, domain: FAULT_GUEST, target: bad }, "target", [/target: contains a NUL or line break/]);
            await checkRefusal(resources, { connection: { ...connection, uri: `qemu:///system${bad}` }, domain: FAULT_GUEST }, "connection.uri", [/connection\.uri: contains a NUL/]);
            await checkRefusal(resources, { connection: { ...connection, user: `root${bad}` }, domain: FAULT_GUEST }, "connection.user", [/contains a NUL/]);
            // The engine always checks first; the provider still refuses on its own.
            const raw = providers.domainResources as Required<typeof providers.domainResources>;
            await rejectsWith(raw.create({ connection, domain: `${FAULT_GUEST}${bad}`, memory: "200MiB" }), InputError, [/domain contains a NUL or line break/]);
            const rawDisk = providers.attachedDisk as Required<typeof providers.attachedDisk>;
            await rejectsWith(rawDisk.create({ connection, domain: FAULT_GUEST, source: `/x${bad}.img` }), InputError, [/contains a NUL or line break/]);
        }
        assertXmlUnchanged(FAULT_GUEST, baseline, "NUL/newline inputs");
    });
});
