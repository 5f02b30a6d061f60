/**
 * `sudo: true` on pll-fault1, as the rig's password user `pllpass` (key-less; in group libvirt, so
 * only sudo's own log proves sudo was used). With the sudoers rule the README gives (NOPASSWD for
 * virsh, stat and test), every virsh call runs as `sudo -n virsh …` and the host checks as
 * `sudo -n stat/test`; with no rule, or a rule that wants a password, every resource fails with
 * sudo's message and the fix, and the domain XML stays byte-identical.
 */
import assert from "node:assert/strict";
import { execFileSync } from "child_process";
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from "fs";
import type {
    AttachedCdromInputs, AttachedCdromOutputs, AttachedDiskInputs, AttachedDiskOutputs, AttachedInterfaceInputs,
    AttachedInterfaceOutputs, ConnectionInputs, DomainResourcesInputs, DomainResourcesOutputs,
} from "../../provider/contract";
import { providers, VirshError } from "../../provider/index";
import {
    blockList, configXml, createImage, createIso, currentMemoryKiB, rejectsWith, removeFiles, resetGuest, resetGuestInBackground, RigEnv, rigConnection, rigUp, typed, waitFor, memStats,
} from "../rig/rig-env";
import { assertXmlUnchanged, FAULT_GUEST, refreshThenPreviewAgree, settledXmls } from "./security-fixtures";

const SUDOERS = "/etc/sudoers.d/pll-security-sudo";

describe("security: sudo: true (pllpass on pll-fault1)", function () {
    this.timeout(180_000);
    const resources = typed<DomainResourcesInputs, DomainResourcesOutputs>(providers.domainResources);
    const disks = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    const nics = typed<AttachedInterfaceInputs, AttachedInterfaceOutputs>(providers.attachedInterface);
    const cdroms = typed<AttachedCdromInputs, AttachedCdromOutputs>(providers.attachedCdrom);
    let env: RigEnv;
    let connection: ConnectionInputs;
    let sudoLog = "";
    const files: string[] = [];

    /** Installs a sudoers drop-in (checked by visudo first) for pllpass, logging every command. */
    const installRule = (rule: string) => {
        const text = `Defaults:pllpass logfile=${sudoLog}, loglinelen=0\n${rule}\n`;
        const candidate = `${SUDOERS}.candidate`;
        writeFileSync(candidate, text, { mode: 0o440 });
        execFileSync("visudo", ["-cqf", candidate]);
        rmSync(candidate);
        writeFileSync(SUDOERS, text);
        chmodSync(SUDOERS, 0o440);
    };
    /** The sudo log lines (COMMAND=…) written since `from`. */
    const sudoCommands = (from: number) => (existsSync(sudoLog) ? readFileSync(sudoLog, "utf8").slice(from) : "")
        .split("\n").map((l) => /COMMAND=(.*)$/.exec(l)?.[1]).filter((c): c is string => c !== undefined);
    const logSize = () => (existsSync(sudoLog) ? readFileSync(sudoLog, "utf8").length : 0);

    before(function () {
        this.timeout(300_000);
        env = rigUp();
        resetGuest(FAULT_GUEST);
        sudoLog = `${env.PLL_RIG_DIR}/sudo-security-${process.pid}.log`;
        const password = readFileSync(env.PLL_PASSWORD_FILE, "utf8").trim();
        connection = { ...rigConnection(env), user: env.PLL_PASSWORD_USER, privateKey: undefined, password, sudo: true };
    });

    after(function () {
        rmSync(SUDOERS, { force: true });
        rmSync(sudoLog, { force: true });
        removeFiles(files);
        resetGuestInBackground(FAULT_GUEST);
    });

    describe("with the README's rule (NOPASSWD: virsh, stat, test)", () => {
        before(() => installRule("pllpass ALL=(root) NOPASSWD: /usr/bin/virsh, /usr/bin/stat, /usr/bin/test"));

        it("DomainResources runs every virsh as `sudo -n virsh …` (sudo's log) and needs no root shell", async () => {
            const from = logSize();
            const inputs: DomainResourcesInputs = { connection, domain: FAULT_GUEST, memory: "300MiB" };
            const { id, outs } = await resources.create(inputs);
            assert.equal(currentMemoryKiB(configXml(FAULT_GUEST)), 300 * 1024);
            await waitFor("the balloon at 300 MiB", () => Math.abs((memStats(FAULT_GUEST).actual ?? 0) - 307200) <= 1024, { timeoutMs: 30_000 });
            const commands = sudoCommands(from);
            assert.ok(commands.includes(`/usr/bin/virsh --connect=qemu:///system setmem --domain=${FAULT_GUEST} --size=307200KiB --config`), commands.join("\n"));
            assert.ok(commands.includes(`/usr/bin/virsh --connect=qemu:///system setmem --domain=${FAULT_GUEST} --size=307200KiB --live`), commands.join("\n"));
            assert.ok(commands.some((c) => c.startsWith(`/usr/bin/virsh --connect=qemu:///system dumpxml --inactive --domain=${FAULT_GUEST}`)));
            assert.ok(commands.every((c) => c.startsWith("/usr/bin/virsh ")), `only virsh ran under sudo:\n${commands.join("\n")}`);
            await refreshThenPreviewAgree(resources, id, outs, inputs);
            const back = await resources.update(id, outs, { ...inputs, memory: "256MiB" });
            assert.equal(back.currentMemoryKiB, 262144);
            // The guest really went back (the live XML's lagging currentMemory once hid the need for a live setmem).
            assert.equal(back.balloonSettled, true, `balloon at ${back.balloonActualKiB} KiB`);
            await waitFor("the balloon back at 256 MiB", () => Math.abs((memStats(FAULT_GUEST).actual ?? 0) - 262144) <= 1024, { timeoutMs: 30_000 });
        });

        it("AttachedDisk's host check runs as `sudo -n stat`; attach and detach work", async () => {
            const image = createImage(env, "sec-sudo");
            files.push(image);
            const from = logSize();
            const inputs: AttachedDiskInputs = { connection, domain: FAULT_GUEST, source: image };
            const { id, outs } = await disks.create(inputs);
            assert.ok(blockList(FAULT_GUEST).some((d) => d.target === outs.target && d.source === image));
            assert.ok(sudoCommands(from).includes(`/usr/bin/stat -L -c %F -- ${image}`), sudoCommands(from).join("\n"));
            await refreshThenPreviewAgree(disks, id, outs, inputs);
            await disks.delete(id, outs);
            assert.ok(!blockList(FAULT_GUEST).some((d) => d.target === outs.target));
            assert.ok(!blockList(FAULT_GUEST, true).some((d) => d.target === outs.target));
        });
    });

    for (const [label, rule] of [
        ["with no sudoers rule", undefined],
        ["with a rule that wants a password", "pllpass ALL=(root) /usr/bin/virsh, /usr/bin/stat, /usr/bin/test"],
    ] as const) {
        describe(label, () => {
            before(() => {
                rmSync(SUDOERS, { force: true });
                if (rule) installRule(rule);
            });

            const sudoPatterns = [/sudo: a password is required/, /passwordless sudo/, /host pllpass@127\.0\.0\.1:2222/];

            it("every resource fails with sudo's message and the fix; the XML is unchanged", async () => {
                const image = createImage(env, "sec-sudo-refused");
                const iso = createIso(env, "sec-sudo-refused");
                files.push(image, iso);
                const before = await settledXmls(FAULT_GUEST);
                const started = Date.now();
                await rejectsWith(resources.create({ connection, domain: FAULT_GUEST, memory: "200MiB" }), VirshError, [/cannot read the domain/, ...sudoPatterns]);
                await rejectsWith(disks.create({ connection, domain: FAULT_GUEST, source: image }), VirshError, sudoPatterns);
                // The host checks (test -d, stat) must not read sudo's refusal as "no such bridge/file".
                const nic = await rejectsWith(nics.create({ connection, domain: FAULT_GUEST, type: "bridge", source: env.PLL_BRIDGE }), VirshError,
                    [/sudo refused to run test/, ...sudoPatterns]);
                assert.doesNotMatch(nic.message, /no Linux bridge/);
                const cd = await rejectsWith(cdroms.create({ connection, domain: FAULT_GUEST, target: "hdc", source: iso }), VirshError,
                    [/sudo refused to run stat/, ...sudoPatterns]);
                assert.doesNotMatch(cd.message, /does not exist/);
                assert.ok(Date.now() - started < 20_000, "sudo's refusal is not retried");
                assertXmlUnchanged(FAULT_GUEST, before, label);
            });
        });
    }
});
