/** The channel bound of one SSH connection, lowered while slots are held (a server that refused a session). */
import assert from "node:assert/strict";
import { Semaphore } from "../../provider/transport/semaphore";

describe("semaphore", () => {
    it("hands a released slot to the next waiter, in order", async () => {
        const slots = new Semaphore(1);
        const order: string[] = [];
        const first = await slots.acquire();
        const second = slots.acquire().then((release) => { order.push("second"); return release; });
        const third = slots.acquire().then((release) => { order.push("third"); return release; });
        assert.deepEqual([slots.free, slots.inUse], [0, 1]);
        first();
        (await second)();
        (await third)();
        assert.deepEqual(order, ["second", "third"]);
        assert.deepEqual([slots.free, slots.inUse], [1, 0]);
    });

    it("lowered below the slots held: waiters start only once fewer than the new bound are held", async () => {
        const slots = new Semaphore(3);
        const held = [await slots.acquire(), await slots.acquire(), await slots.acquire()];
        slots.lower(1);
        let started = false;
        const waiter = slots.acquire().then((release) => { started = true; return release; });
        held[0]();
        held[1]();
        await Promise.resolve();
        assert.equal(started, false, "two released, one still held: the bound of 1 is full");
        held[2]();
        const release = await waiter;
        assert.deepEqual([started, slots.inUse, slots.free], [true, 1, 0]);
        release();
        assert.deepEqual([slots.inUse, slots.free], [0, 1]);
    });

    it("never lowers below one slot, and never raises", () => {
        const slots = new Semaphore(8);
        slots.lower(0);
        assert.equal(slots.free, 1);
        slots.lower(5);
        assert.equal(slots.free, 1);
    });

    it("a release is counted once", async () => {
        const slots = new Semaphore(2);
        const release = await slots.acquire();
        release();
        release();
        assert.deepEqual([slots.inUse, slots.free], [0, 2]);
    });
});
