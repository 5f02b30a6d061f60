/**
 * Eight AttachedDisk creates on one domain at once (the engine sends them in parallel), no target
 * given: all land, on eight distinct targets. Then eight deletes at once: all gone. pll-guest2.
 */
import assert from "node:assert/strict";
import type { AttachedDiskInputs, AttachedDiskOutputs } from "../../provider/contract";
import { providers } from "../../provider/index";
import {
    blockList, configXml, createImage, diskBySource, GUEST2, liveXml, removeFiles, resetGuest, resetGuestInBackground, RigEnv, rigConnection, rigUp, typed,
} from "./rig-env";

const COUNT = 8;

describe("rig: eight AttachedDisks in parallel on one domain (pll-guest2)", function () {
    this.timeout(180_000);
    const provider = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    let env: RigEnv;
    const sources: string[] = [];
    let created: Array<{ id: string; outs: AttachedDiskOutputs }> = [];

    before(function () {
        this.timeout(300_000);
        env = rigUp();
        resetGuest(GUEST2);
        for (let i = 0; i < COUNT; i++) sources.push(createImage(env, `par${i}`));
    });

    after(() => {
        removeFiles(sources);
        resetGuestInBackground(GUEST2);
    });

    it("8 creates at once (Promise.all, no target): all succeed, 8 distinct targets, all in live and config XML", async () => {
        const connection = rigConnection(env);
        created = await Promise.all(sources.map((source) => provider.create({ connection, domain: GUEST2, source })));
        const targets = created.map((c) => c.outs.target);
        assert.equal(new Set(targets).size, COUNT, `distinct targets: ${targets.join(" ")}`);
        assert.equal(new Set(created.map((c) => c.id)).size, COUNT, "distinct ids");
        const live = liveXml(GUEST2);
        const config = configXml(GUEST2);
        created.forEach(({ outs }, i) => {
            assert.match(outs.target, /^vd[a-z]+$/);
            assert.equal(diskBySource(live, sources[i])?.target, outs.target, `live: ${sources[i]}`);
            assert.equal(diskBySource(config, sources[i])?.target, outs.target, `config: ${sources[i]}`);
        });
        assert.equal(blockList(GUEST2).filter((b) => sources.includes(b.source)).length, COUNT, "domblklist shows all 8");
    });

    it("8 deletes at once: all gone from live and config", async () => {
        assert.equal(created.length, COUNT, "the creates ran");
        await Promise.all(created.map(({ id, outs }) => provider.delete(id, outs)));
        const live = liveXml(GUEST2);
        const config = configXml(GUEST2);
        for (const source of sources) {
            assert.equal(diskBySource(live, source), undefined, `live still has ${source}`);
            assert.equal(diskBySource(config, source), undefined, `config still has ${source}`);
        }
    });
});
