/**
 * The property matrix, generated from the rule tables (provider/rules): for every resource, every
 * rule row, on a running and on a shut-off domain, through the engine's call sequence (check,
 * create; then check, diff, and update or delete + create): the preview (diff) shows what the row
 * says; the guest restarts only where the row is a reboot (the preview then shows a replacement, and
 * the base inputs allow it with rebootPolicy "ifRequired"); the domain's XML, read with
 * --security-info, is byte-identical outside the elements the change names; every image keeps its
 * identity (device, inode, birth time), but a disk's move creates its destination and removes the
 * old image only with afterMove "delete" on an image the disk created; the real destroy at the end
 * removes only an image the resource created with deleteImage. The examples are in rule-matrix-examples.ts; a row without one
 * fails here (a tuning row may touch only the <cputune>, <memtune> or <blkiotune> it names). Domains of its own (matrix-domains.ts, copies of pll-e2e1/pll-e2e2/pll-grow2 with a VNC
 * password and a long description); the guest-agent row uses pll-deb1 (reset after).
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "child_process";
import { existsSync } from "fs";
import { join } from "path";
import type { ConnectionInputs } from "../../provider/contract";
import { ChangeKind, ChangeRule, needsReplacement, RuleTable } from "../../provider/rules/rule-table";
import { ATTACHED_CDROM_RULES, ATTACHED_DISK_RULES, ATTACHED_INTERFACE_RULES, DOMAIN_RESOURCES_RULES } from "../../provider/rules";
import { FaultSshd } from "../faults/fault-env";
import { guestIdentity } from "../engine/guest-facts";
import { MatrixDomain } from "./matrix-domains";
import {
    configXml, createImage, createIso, domState, liveXml, missingPath, waitFor, Provider, removeFiles, resetGuest, resetGuestInBackground, RigEnv, rigConnection, rigUp, typedProviders, virshLocal, virshLocalResult,
} from "./rig-env";
import { ExampleContext, Resource, ROW_EXAMPLES, RowExample } from "./rule-matrix-examples";
import { Region, withoutRegions } from "./xml-regions";

const TABLES: Record<Resource, RuleTable> = {
    DomainResources: DOMAIN_RESOURCES_RULES,
    AttachedDisk: ATTACHED_DISK_RULES,
    AttachedInterface: ATTACHED_INTERFACE_RULES,
    AttachedCdrom: ATTACHED_CDROM_RULES,
};
const AGENT_GUEST = "pll-deb1";
const OTHER_PORT = 2250;
const NETWORK = "pll-mx-net";
const OTHER_BRIDGE = "pllmx1";

type State = "running" | "shut off";
type Values = Record<string, unknown>;
type Applied = { id: string; outs: Values };

/** One row of one table in one state, with the inputs before and after the change. */
interface Row {
    resource: Resource;
    rule: ChangeRule;
    state: State;
    /** The domain the resource starts on. */
    name: string;
    /** It and, for the domain row, the one it moves to. */
    involved: string[];
    olds: Values;
    news: Values;
    example: RowExample;
}

/** Inputs with `patch` over them; an undefined value removes the key. */
function merged(base: Values, patch: Values): Values {
    const out: Values = { ...base };
    for (const [key, value] of Object.entries(patch)) {
        if (value === undefined) delete out[key];
        else out[key] = value;
    }
    return out;
}

function securityXml(domain: string, inactive: boolean): string {
    return virshLocal(["dumpxml", "--security-info", ...(inactive ? ["--inactive"] : []), domain]);
}

/** st_dev:st_ino:birth of a file, or undefined when there is none. */
function identity(path: string): string | undefined {
    const result = spawnSync("stat", ["-L", "-c", "%d:%i:%W", "--", path], { encoding: "utf8" });
    return result.status === 0 ? result.stdout.trim() : undefined;
}

/** Every file a domain's disks point at (live and config). */
function imagesOf(domain: string): string[] {
    const xml = `${virshLocalResult(["dumpxml", domain]).stdout}${virshLocalResult(["dumpxml", "--inactive", domain]).stdout}`;
    return [...xml.matchAll(/<source (?:file|dev)='([^']+)'/g)].map((m) => m[1]);
}

/** What a change may touch in a domain's XML: the device it names (before and after), or the sizes a DomainResources row names. */
function regionsFor(resource: Resource, path: string, olds: Values, news: Values, outputs: Values[]): Region[] {
    const outs = (key: string) => outputs.map((o) => o[key]);
    const device = (element: string, texts: unknown[]): Region[] => [...new Set(texts.filter((t): t is string => typeof t === "string"))]
        .map((text) => ({ element, level: "device" as const, containing: [text] }));
    const controllers: Region = { element: "controller", level: "device", containing: ["type='scsi'"] };
    switch (resource) {
        // The disk element before (the old source) and after (the new one, a move's copy or a swap).
        case "AttachedDisk": return [...device("disk", [olds.source, news.source, ...outs("source")]), controllers];
        case "AttachedCdrom": return [...device("disk", [...outs("target"), olds.target, news.target].map((t) => t && `dev='${String(t)}'`)), controllers];
        case "AttachedInterface": return device("interface", [...outs("mac"), olds.mac, news.mac].map((m) => m && `address='${String(m)}'`));
        case "DomainResources": {
            const top = (...names: string[]): Region[] => names.map((element) => ({ element, level: "top" as const }));
            if (path === "memory" || path === "maxMemory") return top("memory", "currentMemory");
            if (path === "vcpus" || path === "maxVcpus") return top("vcpu", "vcpus");
            if (path === "hotplugMemory") return [...top("maxMemory", "memory", "currentMemory", "cpu"), { element: "memory", level: "device" }];
            // A tuning row names its own element alone.
            if (path.startsWith("cpuTune.")) return top("cputune");
            if (path.startsWith("memoryTune.")) return top("memtune");
            if (path === "blkioWeight") return top("blkiotune");
            // Managed anew on another domain or host: that domain's sizes converge to the inputs.
            if (path === "domain" || path.startsWith("connection.")) return top("memory", "currentMemory", "vcpu", "vcpus");
            return [];
        }
    }
}

function firstDifference(a: string, b: string): string {
    const [x, y] = [a.split("\n"), b.split("\n")];
    const i = x.findIndex((line, n) => line !== y[n]);
    return i < 0 ? "longer" : `line ${i + 1}: ${JSON.stringify(x[i])} → ${JSON.stringify(y[i] ?? "")}`;
}

/** The preview as the engine shows it for a row's kind: a replacement (a reboot is one), or an update. */
function engineView(kind: ChangeKind): "replace" | "update" {
    return needsReplacement(kind) ? "replace" : "update";
}

describe("property matrix: every rule row, running and shut off, through the engine's call sequence", function () {
    this.timeout(20 * 60 * 1000);
    let env: RigEnv;
    let sshd: FaultSshd;
    let connection: ConnectionInputs;
    const providers = typedProviders();
    const provider: Record<Resource, Provider<Values, Values>> = {
        DomainResources: providers.resources as unknown as Provider<Values, Values>,
        AttachedDisk: providers.disks as unknown as Provider<Values, Values>,
        AttachedInterface: providers.nics as unknown as Provider<Values, Values>,
        AttachedCdrom: providers.cdroms as unknown as Provider<Values, Values>,
    };
    const domains = new Map<string, MatrixDomain>();
    const leftovers: string[] = [];
    const loops: string[] = [];
    let agentGuestUsed = false;

    /** The matrix's domain for a guest kind and state; `second` is the other domain of the placement row. */
    function domainFor(guest: RowExample["guest"], state: State, second = false): MatrixDomain | undefined {
        if (guest === "agent" && state === "running") return undefined;
        const kind = guest === "virtioMem" ? "mem" : second ? "b" : "a";
        const name = `pll-mx-${state === "running" ? "run" : "off"}-${kind}`;
        let domain = domains.get(name);
        if (!domain) {
            domain = new MatrixDomain(env, name, kind === "mem" ? "pll-grow2" : kind === "b" ? "pll-e2e2" : "pll-e2e1", state === "running");
            domains.set(name, domain);
        }
        return domain;
    }

    const baselines = new Map<string, string>();
    /**
     * The domain as the matrix defined it: anew when a row left its config otherwise (a reboot, a
     * size it cannot take back live, the SCSI controller a hot-plug adds). The live XML is not
     * compared here: libvirt words an empty drive differently once media went in and out.
     */
    async function atBaseline(domain: MatrixDomain): Promise<void> {
        const now = () => securityXml(domain.name, true);
        const exists = virshLocalResult(["domstate", domain.name]).status === 0;
        const baseline = baselines.get(domain.name);
        if (exists && (!domain.running || domState(domain.name) === "running") && baseline === now()) return;
        if (baseline !== undefined) console.log(`      (${domain.name} defined anew: ${firstDifference(baseline, exists ? now() : "")})`);
        await domain.fresh();
        baselines.set(domain.name, now());
    }

    function context(state: State, guest: RowExample["guest"]): ExampleContext {
        return {
            connection,
            otherDomain: domainFor(guest, state, true)?.name ?? "",
            newImage: (label) => {
                // Numbered: the running and the shut-off case ask in the same millisecond.
                const path = missingPath(env, `mx-${label}-${leftovers.length}`);
                leftovers.push(path);
                return path;
            },
            existingImage: (label, format) => {
                const path = createImage(env, `mx-${label}`, format, "16M");
                leftovers.push(path);
                return path;
            },
            loopDevice: () => {
                const image = missingPath(env, "mx-loop");
                leftovers.push(image);
                execFileSync("truncate", ["-s", "16M", image]);
                const loop = execFileSync("losetup", ["-f", "--show", image], { encoding: "utf8" }).trim();
                loops.push(loop);
                return loop;
            },
            otherBridge: OTHER_BRIDGE,
            network: NETWORK,
            iso: (label) => {
                const path = createIso(env, `mx-${label}`);
                leftovers.push(path);
                return path;
            },
            otherPort: OTHER_PORT,
            otherHostName: "localhost",
            mac: (n) => `52:54:00:aa:${state === "running" ? "14" : "15"}:${String(n).padStart(2, "0")}`,
        };
    }

    function baseInputs(resource: Resource, ctx: ExampleContext, domain: string): Values {
        const placed = { connection: ctx.connection, domain };
        switch (resource) {
            case "DomainResources": return { ...placed, memory: "256MiB", vcpus: 1, rebootPolicy: "ifRequired", shutdownTimeout: 60, forceOff: false };
            case "AttachedDisk": return { ...placed, source: ctx.newImage("disk"), size: "16MiB", deleteImage: true };
            case "AttachedInterface": return { ...placed, type: "bridge", source: env.PLL_BRIDGE };
            case "AttachedCdrom": return { ...placed, target: "hdc", source: ctx.iso("first") };
        }
    }

    /** One row in one state: create with the old inputs, then the change, then the real destroy. */
    async function runRow(resource: Resource, rule: ChangeRule, example: RowExample, state: State): Promise<void> {
        const ctx = context(state, example.guest);
        const { from, to } = example.change(ctx);
        const main = domainFor(example.guest, state);
        const other = domainFor(example.guest, state, true);
        const name = main?.name ?? AGENT_GUEST;
        if (main) await atBaseline(main);
        else {
            agentGuestUsed = true;
            resetGuest(AGENT_GUEST);
        }
        if (other && other !== main) await atBaseline(other);
        const row: Row = {
            resource, rule, state, name,
            involved: [...new Set([name, ...(rule.path === "domain" && other ? [other.name] : [])])],
            olds: merged(baseInputs(resource, ctx, name), from),
            news: {},
            example,
        };
        row.news = merged(row.olds, to);
        const p = provider[resource];
        let current = await p.create(row.olds);
        try {
            const { applied, identities } = await changeAndCheck(row, current);
            current = applied;
            await destroyAndCheck(row, applied, identities);
        } catch (error) {
            // Leave nothing behind for the next row; a domain that differs from its baseline is defined anew.
            await p.delete(current.id, current.outs).catch(() => undefined);
            throw error;
        }
    }

    async function changeAndCheck(row: Row, created: Applied): Promise<{ applied: Applied; identities: Map<string, string | undefined> }> {
        const { resource, rule, state, name, involved, olds, news } = row;
        const p = provider[resource];
        const running = state === "running";
        const xmlBefore = involved.map((d) => ({ config: securityXml(d, true), live: running ? securityXml(d, false) : "" }));
        const images = [...new Set([...involved.flatMap(imagesOf), String(olds.source ?? ""), String(news.source ?? "")])].filter((f) => f.startsWith("/"));
        const identities = new Map(images.map((f) => [f, identity(f)]));
        const started = running ? guestIdentity(name) : undefined;

        const expected = running ? rule.running : rule.shutOff;
        if (!running && row.example.notOnShutOff) {
            await notOnShutOff(row, created);
            return { applied: created, identities };
        }
        const stored = row.example.drift ? await driftByHand(row, created, row.example.drift) : created.outs;
        const diff = await p.diff(created.id, stored, await p.check(news));
        assert.equal(diff.changes, true, "the preview shows a change");
        assert.equal((diff.replaces ?? []).length > 0 ? "replace" : "update", engineView(expected),
            `the preview shows the row's kind (${expected}): ${JSON.stringify(diff)}`);

        const applied = await p.apply(created.id, stored, news);
        // A reboot happens only where the row is one (shown as a replacement, allowed by the base's rebootPolicy "ifRequired").
        if (started) {
            const now = guestIdentity(name);
            if (expected === "reboot") assert.notDeepEqual(now, started, "the reboot the preview showed happened");
            else assert.deepEqual(now, started, "the guest did not restart");
        } else {
            for (const d of involved) assert.equal(domState(d), "shut off", `${d} stays shut off`);
        }
        const regions = regionsFor(resource, rule.path, olds, news, [created.outs, applied.outs]);
        involved.forEach((d, i) => {
            assert.equal(withoutRegions(securityXml(d, true), regions), withoutRegions(xmlBefore[i].config, regions),
                `${d}'s config (--security-info) is unchanged outside ${JSON.stringify(regions)}`);
            if (running && expected !== "reboot") {
                assert.equal(withoutRegions(securityXml(d, false), regions), withoutRegions(xmlBefore[i].live, regions),
                    `${d}'s live XML (--security-info) is unchanged outside ${JSON.stringify(regions)}`);
            }
        });
        const removedByMove = movedAwayImage(row, created.outs, expected);
        for (const [file, before] of identities) {
            if (file === removedByMove) {
                assert.equal(existsSync(file), false, `afterMove delete removed ${file}, the image the disk created, once the guest ran on the copy`);
                identities.delete(file);
            } else if (before !== undefined) assert.equal(identity(file), before, `${file} keeps its identity (not removed or recreated)`);
        }
        if (isMove(row, expected)) assert.ok(identity(String(news.source)) !== undefined, `the move put the disk at ${String(news.source)}`);
        return { applied, identities };
    }

    /** A row that moves the disk: a new source, and the row is no replacement (a copy to it, the old image kept unless afterMove says otherwise). */
    function isMove(row: Row, expected: ChangeKind): boolean {
        return row.resource === "AttachedDisk" && row.news.source !== row.olds.source && !needsReplacement(expected);
    }

    /** The one image a change may remove: the old one of a move with afterMove "delete", when the disk created it. */
    function movedAwayImage(row: Row, created: Values, expected: ChangeKind): string | undefined {
        return isMove(row, expected) && row.news.afterMove === "delete" && created.imageCreated === true ? String(row.olds.source) : undefined;
    }

    /** The drift of a half-missing row on a shut-off domain ({@link RowExample.notOnShutOff}). */
    async function notOnShutOff(row: Row, created: Applied): Promise<void> {
        const p = provider[row.resource];
        if (row.example.drift === "live") {
            assert.equal((await p.diff(created.id, created.outs, await p.check(row.news))).changes, false, "no live half: the preview shows nothing");
            return;
        }
        virshLocal([...detachByHand(row, created.outs), "--config"]);
        assert.equal((await p.read(created.id, created.outs)).props, undefined, "gone from the config of a shut-off domain is gone: refresh drops it");
    }

    /** virsh arguments an operator would use to detach the device, before --live/--config. */
    function detachByHand(row: Row, outs: Values): string[] {
        return row.resource === "AttachedInterface"
            ? ["detach-interface", row.name, String(outs.type), "--mac", String(outs.mac)]
            : ["detach-disk", row.name, String(outs.target)];
    }

    /** A half of the device removed by hand (as an operator's `virsh detach-* --config|--live`), then the refresh. */
    async function driftByHand(row: Row, created: Applied, half: "live" | "config"): Promise<Values> {
        const { outs } = created;
        virshLocal([...detachByHand(row, outs), `--${half}`]);
        const marker = row.resource === "AttachedInterface" ? `address='${String(outs.mac)}'` : `dev='${String(outs.target)}'`;
        await waitFor(`the ${half} half of ${marker} to go`, () => !(half === "live" ? liveXml(row.name) : configXml(row.name)).includes(marker), { timeoutMs: 30_000 });
        const refreshed = await provider[row.resource].read(created.id, outs);
        assert.ok(refreshed.props, "refresh keeps a device that is still in one half");
        return refreshed.props;
    }

    /** The real destroy: only the image this resource created, with deleteImage, goes. */
    async function destroyAndCheck(row: Row, applied: Applied, identities: Map<string, string | undefined>): Promise<void> {
        await provider[row.resource].delete(applied.id, applied.outs);
        const ownImage = applied.outs.imageCreated === true && applied.outs.deleteImage === true ? String(applied.outs.source) : undefined;
        for (const [file, before] of identities) {
            if (file === ownImage) assert.equal(existsSync(file), false, `the destroy removed ${file}, which the resource created with deleteImage`);
            else if (before !== undefined) assert.equal(identity(file), before, `${file} survives the destroy unchanged`);
        }
    }

    before(async function () {
        env = rigUp();
        sshd = new FaultSshd(env, OTHER_PORT);
        sshd.start();
        connection = rigConnection(env, { hostKey: env.PLL_HOST_KEY_FINGERPRINT });
        spawnSync("ip", ["link", "add", OTHER_BRIDGE, "type", "bridge"]);
        execFileSync("ip", ["link", "set", OTHER_BRIDGE, "up"]);
        if (virshLocalResult(["net-info", NETWORK]).status !== 0) {
            const file = join(env.PLL_IMAGES, `${NETWORK}.xml`);
            execFileSync("sh", ["-c", `printf '%s' "$1" > "$2"`, "sh",
                `<network><name>${NETWORK}</name><forward mode='bridge'/><bridge name='${env.PLL_BRIDGE}'/></network>`, file]);
            virshLocal(["net-define", file]);
            virshLocal(["net-start", NETWORK]);
        }
    });

    after(function () {
        for (const domain of domains.values()) domain.remove();
        if (agentGuestUsed) resetGuestInBackground(AGENT_GUEST);
        for (const loop of loops) spawnSync("losetup", ["-d", loop]);
        removeFiles(leftovers);
        virshLocalResult(["net-destroy", NETWORK]);
        virshLocalResult(["net-undefine", NETWORK]);
        spawnSync("ip", ["link", "del", OTHER_BRIDGE]);
        sshd?.stop();
    });

    for (const [resource, table] of Object.entries(TABLES) as Array<[Resource, RuleTable]>) {
        describe(resource, () => {
            for (const rule of table.rules) {
                const example = ROW_EXAMPLES[resource][`${rule.path}|${rule.when}`];
                // Both states at once: they use different domains, and the wait is mostly on the host.
                it(`${rule.path} — ${rule.when}: running ${rule.running}, shut off ${rule.shutOff}`, async () => {
                    assert.ok(example, `no rig example for ${resource} row "${rule.path}|${rule.when}": add one to test/rig/rule-matrix-examples.ts`);
                    const results = await Promise.allSettled((["running", "shut off"] as const).map((state) => runRow(resource, rule, example, state)));
                    const failed = results.flatMap((r, i) => (r.status === "rejected" ? [`${i === 0 ? "running" : "shut off"}: ${String((r.reason as Error)?.message ?? r.reason)}`] : []));
                    if (failed.length > 0) assert.fail(failed.join("\n\n"));
                });
            }
        });
    }
});
