/** Bounds concurrent work; sshd refuses channels past MaxSessions (10 by default) per connection. */
export class Semaphore {
    private waiting: Array<() => void> = [];
    private available: number;

    constructor(capacity: number) {
        this.available = capacity;
    }

    /** Slots free right now (a jump host opens another connection rather than wait for one). */
    get free(): number {
        return this.available;
    }

    /** Takes a slot for as long as the caller holds it (a forwarded channel lives as long as its connection). */
    async acquire(): Promise<() => void> {
        if (this.available > 0) this.available--;
        else await new Promise<void>((resolve) => this.waiting.push(resolve));
        let released = false;
        return () => {
            if (released) return;
            released = true;
            const next = this.waiting.shift();
            if (next) next();
            else this.available++;
        };
    }

    async run<T>(work: () => Promise<T>): Promise<T> {
        const release = await this.acquire();
        try {
            return await work();
        } finally {
            release();
        }
    }
}
