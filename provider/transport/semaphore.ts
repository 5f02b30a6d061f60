/** Bounds concurrent work; sshd refuses channels past MaxSessions (10 by default) per connection. */
export class Semaphore {
    private waiting: Array<() => void> = [];
    private available: number;

    constructor(capacity: number) {
        this.available = capacity;
    }

    async run<T>(work: () => Promise<T>): Promise<T> {
        if (this.available > 0) this.available--;
        else await new Promise<void>((resolve) => this.waiting.push(resolve));
        try {
            return await work();
        } finally {
            const next = this.waiting.shift();
            if (next) next();
            else this.available++;
        }
    }
}
