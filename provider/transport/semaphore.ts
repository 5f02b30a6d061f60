/**
 * Bounds concurrent work; sshd refuses channels past MaxSessions (10 by default) per connection.
 * The bound can be lowered while slots are held (a server that refused one more session): a
 * release then frees a slot only once fewer than the new bound are held.
 */
export class Semaphore {
    private waiting: Array<() => void> = [];
    private held = 0;

    constructor(private capacity: number) {}

    /** Slots free right now (a jump host opens another connection rather than wait for one). */
    get free(): number {
        return Math.max(0, this.capacity - this.held);
    }

    /** Slots taken right now. */
    get inUse(): number {
        return this.held;
    }

    /** No more than `capacity` (at least one) at once from now on. */
    lower(capacity: number): void {
        this.capacity = Math.max(1, Math.min(this.capacity, capacity));
    }

    /** Takes a slot for as long as the caller holds it (a forwarded channel lives as long as its connection). */
    async acquire(): Promise<() => void> {
        if (this.held < this.capacity) this.held++;
        // The releaser hands its slot over: `held` stays as it is.
        else await new Promise<void>((resolve) => this.waiting.push(resolve));
        let released = false;
        return () => {
            if (released) return;
            released = true;
            const next = this.held <= this.capacity ? this.waiting.shift() : undefined;
            if (next) next();
            else this.held--;
        };
    }
}
