/**
 * Issue 15, part 3: a consumer project outside the repo installs the package the two ways the
 * README's "Install" section says (a git URL, an `npm pack` tarball) and runs it through the plain
 * `pulumi` CLI (Pulumi.yaml, `runtime: nodejs`, the language host), on pll-fault3: a disk attached
 * by `up` and detached by `destroy`, the guest left as it was. In the test command's lane apart
 * (mostly npm's time), first, before the other pll-fault3 suites.
 */
import assert from "node:assert/strict";
import { execFileSync } from "child_process";
import { existsSync, readFileSync, writeFileSync } from "fs";
import { join } from "path";
import { configXml, createImage, diskBySource, liveXml, removeFiles, REPO_ROOT, resetGuest, resetGuestInBackground, RigEnv, rigUp } from "../rig/rig-env";
import { Consumer, ensureCli, installConsumer, run, scratchDir } from "./engine-fixture";
import { guestIdentity } from "./guest-facts";

const DOMAIN = "pll-fault3";
const PACKAGE = "pulumi-libvirt-live";

interface RepoManifest {
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
}

/** The program as a user writes it (README "A program"), its values from stack config. */
function program(flavor: "ts" | "js"): string {
    const head = flavor === "ts"
        ? `import * as pulumi from "@pulumi/pulumi";\nimport { AttachedDisk } from "${PACKAGE}";\n`
        : `const pulumi = require("@pulumi/pulumi");\nconst { AttachedDisk } = require("${PACKAGE}");\n`;
    const exported = (name: string, value: string): string => (flavor === "ts" ? `export const ${name} = ${value};` : `exports.${name} = ${value};`);
    return `${head}
const cfg = new pulumi.Config();
const connection = {
    host: cfg.require("host"), port: cfg.requireNumber("port"), user: cfg.require("user"),
    privateKey: cfg.requireSecret("sshKey"), hostKey: cfg.require("hostKey"),
};
const disk = new AttachedDisk("consumer-data", { connection, domain: cfg.require("domain"), source: cfg.require("source") });
${exported("target", "disk.target")}
${exported("nodeVersion", "process.version")}
`;
}

/** A project folder run with the plain CLI on its own file backend and PULUMI_HOME. */
class PlainCliProject {
    private readonly env: Record<string, string>;

    constructor(readonly dir: string) {
        const state = scratchDir("pll-consumer-state-");
        this.env = {
            PULUMI_BACKEND_URL: `file://${state}`, PULUMI_HOME: join(state, ".home"), PULUMI_CONFIG_PASSPHRASE: "pll-consumer",
            PULUMI_SKIP_UPDATE_CHECK: "true", PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        };
    }

    pulumi(...args: string[]): Promise<string> {
        return run("pulumi", [...args, "--non-interactive"], this.dir, this.env);
    }

    /** `stack init` and the README's config: the rig's host, key (secret), host key, the disk. */
    async initStack(env: RigEnv, source: string): Promise<void> {
        writeFileSync(join(this.dir, "Pulumi.yaml"), "name: pll-consumer\nruntime: nodejs\n");
        await this.pulumi("stack", "init", "consumer");
        await this.pulumi("config", "set-all", "--plaintext", `host=${env.PLL_SSH_HOST}`, "--plaintext", `port=${env.PLL_SSH_PORT}`,
            "--plaintext", `user=${env.PLL_SSH_USER}`, "--plaintext", `hostKey=${env.PLL_HOST_KEY_FINGERPRINT}`,
            "--plaintext", `domain=${DOMAIN}`, "--plaintext", `source=${source}`, "--secret", `sshKey=${readFileSync(env.PLL_SSH_KEY, "utf8")}`);
    }

    /** `pulumi preview --json`: what it would do to the disk. */
    async previewDiskOp(): Promise<string | undefined> {
        const plan = JSON.parse(await this.pulumi("preview", "--json")) as { steps?: Array<{ op: string; urn: string }> };
        return plan.steps?.find((step) => step.urn.endsWith("::consumer-data"))?.op;
    }
}

function attached(source: string): { live: boolean; config: boolean } {
    return { live: diskBySource(liveXml(DOMAIN), source) !== undefined, config: diskBySource(configXml(DOMAIN), source) !== undefined };
}

function seconds(since: number): string {
    return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}

/**
 * A fresh project with the package from a git URL of the committed HEAD (as the README's
 * "Install" says), TypeScript as a user's, installed with the machine's npm cache; its folder.
 */
async function installFromGit(manifest: RepoManifest): Promise<string> {
    const head = execFileSync("git", ["rev-parse", "HEAD"], { cwd: REPO_ROOT, encoding: "utf8" }).trim();
    const dir = scratchDir("pll-consumer-git-");
    writeFileSync(join(dir, "package.json"), `${JSON.stringify({
        name: "pll-consumer", version: "1.0.0", private: true, main: "index.ts",
        dependencies: { [PACKAGE]: `git+file://${REPO_ROOT}#${head}`, "@pulumi/pulumi": manifest.dependencies["@pulumi/pulumi"] },
        devDependencies: { typescript: manifest.devDependencies.typescript, "@types/node": manifest.devDependencies["@types/node"] },
    }, null, 2)}\n`);
    writeFileSync(join(dir, "index.ts"), program("ts"));
    const t = Date.now();
    await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund"], dir);
    console.log(`      npm install git+file://…#${head.slice(0, 12)}: ${seconds(t)}`);
    return dir;
}

describe(`engine: a consumer project installs the package as the README says and runs the plain CLI (${DOMAIN})`, function () {
    this.timeout(600_000);
    let env: RigEnv;
    const images: string[] = [];
    let started = 0;
    // Both installs at once (mostly waiting on npm's cache and registry): each test awaits its own.
    let fromGit: Promise<string>;
    let fromTarball: Promise<Consumer>;

    before(() => {
        env = rigUp();
        resetGuest(DOMAIN);
        ensureCli();
        started = Date.now();
        fromGit = installFromGit(JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as RepoManifest);
        fromTarball = installConsumer();
        for (const install of [fromGit, fromTarball]) install.catch(() => undefined); // awaited (and reported) by its test
    });

    after(() => {
        removeFiles(images);
        resetGuestInBackground(DOMAIN);
        console.log(`      both ways, from the installs' start: ${seconds(started)}`);
    });

    it("from a git URL of the committed HEAD: npm builds dist/ (prepare), and preview, up and destroy attach and detach a disk on the running guest", async () => {
        const source = createImage(env, "consumer");
        images.push(source);
        const before = guestIdentity(DOMAIN);
        const dir = await fromGit;
        assert.ok(!dir.startsWith(REPO_ROOT), "the consumer lives outside the repo");
        assert.ok(existsSync(join(dir, "node_modules", PACKAGE, "dist", "sdk", "index.js")), "the git install holds the build (dist/)");

        const project = new PlainCliProject(dir);
        await project.initStack(env, source);
        let t = Date.now();
        assert.equal(await project.previewDiskOp(), "create", "preview plans the disk");
        assert.deepEqual(attached(source), { live: false, config: false }, "preview changed nothing");
        console.log(`      pulumi preview: ${seconds(t)}`);

        t = Date.now();
        await project.pulumi("up", "--yes", "--skip-preview");
        assert.deepEqual(attached(source), { live: true, config: true }, "up attached the disk, live and in the config");
        const outputs = JSON.parse(await project.pulumi("stack", "output", "--json")) as { target: string; nodeVersion: string };
        assert.match(outputs.target, /^(vd|sd)[a-z]+$/);
        assert.equal(outputs.nodeVersion, process.version, "the language host ran the program on the node of PATH");
        console.log(`      pulumi up: ${seconds(t)} (target ${outputs.target}, program on Node.js ${outputs.nodeVersion})`);

        t = Date.now();
        await project.pulumi("destroy", "--yes", "--skip-preview");
        assert.deepEqual(attached(source), { live: false, config: false }, "destroy detached the disk");
        await project.pulumi("stack", "rm", "--yes");
        console.log(`      pulumi destroy: ${seconds(t)}`);
        assert.deepEqual(guestIdentity(DOMAIN), before, "the guest never restarted");
    });

    it("from an npm pack tarball (no dev dependencies): the package requires at once and preview plans the disk", async () => {
        const consumer = await fromTarball;
        const installed = join(consumer.dir, "node_modules", PACKAGE);
        assert.ok(existsSync(join(installed, "dist", "sdk", "index.js")) && existsSync(join(installed, "dist", "provider", "index.js")), "the tarball holds dist/");
        assert.ok(!existsSync(join(consumer.dir, "node_modules", "typescript")), "no dev dependency came along");
        const exported = execFileSync("node", ["-p", `Object.keys(require("${PACKAGE}")).join(" ")`], { cwd: consumer.dir, encoding: "utf8" });
        assert.match(exported, /\bAttachedDisk\b/);

        const source = createImage(env, "consumer-tgz");
        images.push(source);
        writeFileSync(join(consumer.dir, "index.js"), program("js"));
        const project = new PlainCliProject(consumer.dir);
        await project.initStack(env, source);
        const t = Date.now();
        assert.equal(await project.previewDiskOp(), "create", "preview plans the disk");
        assert.deepEqual(attached(source), { live: false, config: false }, "preview changed nothing");
        await project.pulumi("stack", "rm", "--yes");
        console.log(`      ${consumer.tarball.split("/").pop() ?? ""}: require, preview: ${seconds(t)}`);
    });
});
