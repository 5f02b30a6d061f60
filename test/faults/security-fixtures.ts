/**
 * Shared by the security and bad-input suites (pll-fault1 only): byte-level XML snapshots taken
 * over the test's own local virsh, a remote-side canary that proves no injected command ran,
 * hostile strings, throwaway domains, and the provider-level "refresh then preview agree" check.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import type * as pulumi from "@pulumi/pulumi";
import { Provider, virshLocal, virshLocalResult } from "../rig/rig-env";

export const FAULT_GUEST = "pll-fault1";

// ------------------------------------------------------------------ XML identity

export interface DomainXmls {
    live: string;
    config: string;
}

/** Live (empty while shut off) and inactive XML, read with `--domain=` so a leading '-' is no option. */
export function domainXmls(domain: string): DomainXmls {
    const running = virshLocal(["domstate", `--domain=${domain}`]).trim() === "running";
    return {
        live: running ? virshLocal(["dumpxml", `--domain=${domain}`]) : "",
        config: virshLocal(["dumpxml", "--inactive", `--domain=${domain}`]),
    };
}

/**
 * The XML once the guest's balloon has settled. libvirt updates the live <currentMemory> from
 * QEMU's balloon events, which lag `dommemstat` (RIG.md): right after a reset the live XML may
 * still read 523264 and move to 262144 seconds later, with nobody changing anything. So a
 * baseline is taken only when the live value equals the configured target and the XML has stayed
 * byte-identical for 2 s.
 */
export async function settledXmls(domain: string, timeoutMs = 60_000): Promise<DomainXmls> {
    const target = (xml: string) => /<currentMemory unit='KiB'>(\d+)</.exec(xml)?.[1];
    const deadline = Date.now() + timeoutMs;
    let previous = domainXmls(domain);
    let stableSince = Date.now();
    for (;;) {
        await new Promise((r) => setTimeout(r, 500));
        const now = domainXmls(domain);
        if (now.live !== previous.live || now.config !== previous.config) stableSince = Date.now();
        previous = now;
        const settled = !now.live || target(now.live) === target(now.config);
        if (settled && Date.now() - stableSince >= 2_000) return now;
        if (Date.now() > deadline) throw new Error(`${domain}'s XML did not settle within ${timeoutMs} ms (live currentMemory ${target(now.live)}, config ${target(now.config)})`);
    }
}

export function assertXmlUnchanged(domain: string, before: DomainXmls, what: string): void {
    const after = domainXmls(domain);
    assert.equal(after.live, before.live, `${what}: the live XML of ${domain} changed`);
    assert.equal(after.config, before.config, `${what}: the inactive XML of ${domain} changed`);
}

// ------------------------------------------------------------------ canary

/**
 * Hostile values that would create a canary file if any shell (or libvirt) ever ran them. Relative
 * names land in the remote shell's working directory (the SSH user's home); absolute ones in /tmp.
 */
export class Canary {
    readonly token = `pllcanary${process.pid}${Date.now().toString(36)}`;
    /** For names with a length limit (domain file names, 15-byte bridge names). */
    readonly short = `pc${Date.now().toString(36).slice(-5)}`;
    /** Places a relative `touch NAME` from the remote shell (root's or pllpass's home), libvirtd (/) or the test lands. */
    private readonly dirs = ["/root", "/home/pllpass", "/tmp", "/", process.cwd()];

    /** Payloads without '/', usable in domain names and bridge names. */
    payloads(): Record<string, string> {
        const t = this.token;
        return {
            "space": `a b ${t}`,
            "single quote": `it's ${t}'`,
            "double quote": `say "${t}"`,
            "$(…)": `x$(touch ${t}-dollar)`,
            "backticks": `x\`touch ${t}-tick\``,
            ";": `x; touch ${t}-semi`,
            "|": `x | touch ${t}-pipe`,
            "&&": `x && touch ${t}-and`,
            "leading -": `--help -x ${t}`,
            "non-ASCII": `ü名-${t}`,
        };
    }

    /** Payloads that may hold '/', for host paths: the same ones, writing to /tmp. */
    pathPayloads(): Record<string, string> {
        const t = this.token;
        return {
            ...this.payloads(),
            "$(…) absolute": `y$(touch /tmp/${t}-abs)`,
            "backticks absolute": `y\`touch /tmp/${t}-tickabs\``,
        };
    }

    /** Fails naming every canary file found. */
    assertAbsent(what: string): void {
        const found: string[] = [];
        for (const dir of this.dirs) {
            if (!existsSync(dir)) continue;
            for (const name of readdirSync(dir)) if (this.matches(name)) found.push(join(dir, name));
        }
        assert.deepEqual(found, [], `${what}: an injected command ran (canary files exist)`);
    }

    private matches(name: string): boolean {
        return name.startsWith(this.token) || name.startsWith(this.short);
    }

    cleanup(): void {
        for (const dir of this.dirs) {
            if (!existsSync(dir)) continue;
            for (const name of readdirSync(dir)) if (this.matches(name)) rmSync(join(dir, name), { force: true, recursive: true });
        }
    }
}

// ------------------------------------------------------------------ throwaway domains

/** Defines (does not start) a small no-OS domain; `devices` is extra XML inside <devices>. */
export function defineThrowaway(name: string, devices = ""): void {
    undefineThrowaway(name);
    const escaped = name.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    const xmlPath = join(tmpdir(), `pll-throwaway-${process.pid}-${Date.now()}.xml`);
    writeFileSync(xmlPath, `<domain type='qemu'>
  <name>${escaped}</name>
  <description>pulumi-libvirt-live security/bad-input throwaway</description>
  <memory unit='KiB'>262144</memory>
  <currentMemory unit='KiB'>131072</currentMemory>
  <vcpu placement='static' current='1'>2</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><controller type='usb' model='none'/><memballoon model='none'/>${devices}</devices>
</domain>
`);
    try {
        virshLocal(["define", `--file=${xmlPath}`]);
    } finally {
        rmSync(xmlPath, { force: true });
    }
}

export function undefineThrowaway(name: string): void {
    const state = virshLocalResult(["domstate", `--domain=${name}`]);
    if (state.status !== 0) return;
    if (state.stdout.trim() !== "shut off") virshLocalResult(["destroy", `--domain=${name}`]);
    virshLocal(["undefine", `--domain=${name}`]);
}

// ------------------------------------------------------------------ engine-like steps

/**
 * What `pulumi refresh` then `pulumi preview --expect-no-changes` do with one resource: read it
 * back from the host, then diff the refreshed state against the same inputs. Returns the props.
 */
export async function refreshThenPreviewAgree<I, O>(provider: Provider<I, O>, id: string, outs: O, inputs: I): Promise<O> {
    const read = await provider.read(id, outs);
    assert.ok(read.props, "refresh lost the resource");
    const diff: pulumi.dynamic.DiffResult = await provider.diff(id, read.props, await provider.check(inputs));
    assert.equal(diff.changes, false, `preview after refresh wants changes: ${JSON.stringify(diff)}`);
    return read.props;
}

/** check() failures joined into one text, for matching; fails if check accepted the inputs. */
export async function checkRefusal<I, O>(provider: Provider<I, O>, inputs: I, field: string, patterns: RegExp[]): Promise<string> {
    const failures = await provider.checkFailures(inputs);
    assert.ok(failures.length > 0, `check() accepted ${field}`);
    assert.ok(failures.some((f) => f.property === field), `check() failures do not name ${field}: ${JSON.stringify(failures)}`);
    const text = failures.map((f) => f.reason).join("\n");
    for (const pattern of patterns) assert.match(text, pattern);
    return text;
}
