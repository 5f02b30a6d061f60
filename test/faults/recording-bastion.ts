/**
 * A jump host of the test's own: an SSH server (ssh2's `Server`) on 127.0.0.1 that records every
 * authentication attempt (method, user, and whether a password arrived, never the password
 * itself), accepts only the rig's public key, and forwards `direct-tcpip` channels to 127.0.0.1
 * alone, as `ssh -J` asks of a bastion. What a client offers the bastion is then read from here.
 */
import { execFileSync } from "child_process";
import { mkdtempSync, readFileSync, rmSync } from "fs";
import { connect, AddressInfo } from "net";
import { tmpdir } from "os";
import { join } from "path";
import { AuthContext, Connection, Server, utils } from "ssh2";

export interface AuthAttempt {
    method: string;
    user: string;
    /** A password was sent (its text is not kept). */
    passwordArrived: boolean;
}

export class RecordingBastion {
    readonly attempts: AuthAttempt[] = [];
    /** The methods a refusal lists as left (what the server says it takes). */
    methods: Array<"publickey" | "password"> = ["publickey", "password"];
    /** `SHA256:…` of the bastion's host key, to pin as the hop's hostKey. */
    readonly fingerprint: string;
    private readonly dir: string;
    private readonly server: Server;
    private readonly clients = new Set<Connection>();

    /** `authorizedPublicKey`: an OpenSSH .pub line; the only credential the bastion accepts. */
    constructor(authorizedPublicKey: string) {
        this.dir = mkdtempSync(join(tmpdir(), "pll-bastion-"));
        const hostKeyPath = join(this.dir, "host_key");
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKeyPath], { stdio: "ignore" });
        this.fingerprint = execFileSync("ssh-keygen", ["-lf", `${hostKeyPath}.pub`], { encoding: "utf8" }).split(/\s+/)[1];
        const allowed = utils.parseKey(authorizedPublicKey);
        if (allowed instanceof Error) throw allowed;
        this.server = new Server({ hostKeys: [readFileSync(hostKeyPath)] }, (client) => {
            this.clients.add(client);
            client.on("close", () => this.clients.delete(client));
            client.on("error", () => undefined);
            client.on("authentication", (ctx: AuthContext) => {
                this.attempts.push({ method: ctx.method, user: ctx.username, passwordArrived: ctx.method === "password" });
                const keyOk = ctx.method === "publickey" && ctx.key.algo === allowed.type && ctx.key.data.equals(allowed.getPublicSSH())
                    && (!ctx.signature || allowed.verify(ctx.blob as Buffer, ctx.signature, ctx.hashAlgo) === true);
                // By default password is on the list of methods, so a client that holds one would send it.
                if (keyOk) ctx.accept();
                else ctx.reject(this.methods);
            });
            client.on("ready", () => {
                client.on("tcpip", (accept, reject, info) => {
                    if (info.destIP !== "127.0.0.1") return reject();
                    const socket = connect(info.destPort, "127.0.0.1");
                    socket.once("connect", () => {
                        const channel = accept();
                        channel.pipe(socket).pipe(channel);
                        channel.on("close", () => socket.destroy());
                        socket.on("close", () => channel.close());
                    });
                    socket.once("error", () => reject());
                });
            });
        });
    }

    /** Listens on 127.0.0.1:`port`. */
    async listen(port: number): Promise<number> {
        await new Promise<void>((resolve, reject) => {
            this.server.once("error", reject);
            this.server.listen(port, "127.0.0.1", () => resolve());
        });
        return (this.server.address() as AddressInfo).port;
    }

    passwordsReceived(): number {
        return this.attempts.filter((a) => a.passwordArrived).length;
    }

    async close(): Promise<void> {
        for (const client of this.clients) client.end();
        await new Promise<void>((resolve) => this.server.close(() => resolve()));
        rmSync(this.dir, { recursive: true, force: true });
    }
}
