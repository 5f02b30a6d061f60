/**
 * One SSH connection per host (and credentials), reused across operations and reopened when it
 * drops. Errors name the host as user@host:port and never include a key or password.
 */
import { createHash } from "crypto";
import { homedir } from "os";
import { join } from "path";
import { Client, ClientChannel, ConnectConfig } from "ssh2";
import type { ConnectionInputs } from "../contract";
import { AuthenticationError, HostKeyError, HostUnreachableError, InputError } from "../errors";
import { checkKnownHosts, fingerprintOf, HostKeyVerdict, readKnownHosts } from "./host-key";
import { Semaphore } from "./semaphore";

export interface ExecResult {
    stdout: string;
    stderr: string;
    exitCode: number;
}

/** What the virsh layer needs from a transport: run one command line, optionally feeding stdin. */
export interface RemoteHost {
    /** user@host:port, for messages. */
    readonly label: string;
    /** `timeoutMs` bounds the whole exec; past it the channel is closed and the outcome is unknown. */
    exec(commandLine: string, stdin?: string, timeoutMs?: number): Promise<ExecResult>;
}

const MAX_CHANNELS_PER_CONNECTION = 8;
const DEFAULT_EXEC_TIMEOUT_MS = 10 * 60 * 1000;

type HostKeyRejection = { verdict: Exclude<HostKeyVerdict, "match"> | "mismatch"; fingerprint: string };

class SshHost implements RemoteHost {
    readonly label: string;
    private client?: Promise<Client>;
    private readonly channels = new Semaphore(MAX_CHANNELS_PER_CONNECTION);

    constructor(private readonly connection: ConnectionInputs) {
        this.label = `${connection.user}@${connection.host}:${connection.port ?? 22}`;
    }

    exec(commandLine: string, stdin?: string, timeoutMs = DEFAULT_EXEC_TIMEOUT_MS): Promise<ExecResult> {
        return this.channels.run(async () => {
            const client = await this.connected();
            let channel: ClientChannel;
            try {
                channel = await openChannel(client, commandLine);
            } catch {
                // The command was never sent: a stale connection is safe to replace once.
                this.close();
                channel = await openChannel(await this.connected(), commandLine);
            }
            return this.collect(channel, timeoutMs, stdin);
        });
    }

    close(): void {
        void this.client?.then((c) => c.end(), () => undefined);
        this.client = undefined;
    }

    private connected(): Promise<Client> {
        if (!this.client) {
            const attempt = this.connect();
            this.client = attempt;
            attempt.catch(() => {
                if (this.client === attempt) this.client = undefined;
            });
        }
        return this.client;
    }

    private connect(): Promise<Client> {
        const conn = this.connection;
        const port = conn.port ?? 22;
        let rejection: HostKeyRejection | undefined;
        const config: ConnectConfig = {
            host: conn.host,
            port,
            username: conn.user,
            privateKey: conn.privateKey,
            passphrase: conn.privateKeyPassphrase,
            password: conn.password,
            readyTimeout: (conn.connectTimeout ?? 15) * 1000,
            keepaliveInterval: 10_000,
            keepaliveCountMax: 3,
            hostVerifier: (key: Buffer): boolean => {
                rejection = verifyHostKey(conn, port, key);
                return rejection === undefined;
            },
        };
        return new Promise<Client>((resolve, reject) => {
            const client = new Client();
            let ready = false;
            client.once("ready", () => {
                ready = true;
                client.on("error", () => this.dropIf(client));
                client.on("close", () => this.dropIf(client));
                resolve(client);
            });
            // ssh2 can emit several errors for one failed handshake (the timeout, then "Connection lost
            // before handshake"): an unheard one is an uncaught exception that ends the provider process.
            client.on("error", (err: Error & { level?: string; code?: string }) => {
                if (ready) return;
                reject(this.connectError(err, rejection));
                client.end();
            });
            try {
                client.connect(config);
            } catch (err) {
                // ssh2 throws synchronously for an unreadable key; its message holds no key material.
                reject(privateKeyError((err as Error).message, this.label));
            }
        });
    }

    private dropIf(client: Client): void {
        void this.client?.then((current) => {
            if (current === client) this.client = undefined;
        }, () => undefined);
    }

    private connectError(err: Error & { level?: string; code?: string }, rejection?: HostKeyRejection): Error {
        const host = this.label;
        const conn = this.connection;
        if (rejection) {
            const pin = `connection.hostKey = "${rejection.fingerprint}"`;
            // The file this connection reads, not ~/.ssh/known_hosts: adding the key elsewhere would not help.
            const scan = `ssh-keyscan -p ${conn.port ?? 22} ${conn.host} >> ${knownHostsPathOf(conn)}`;
            if (rejection.verdict === "unknown") {
                return new HostKeyError(`SSH host key ${rejection.fingerprint} is not in ${knownHostsPathOf(conn)}`, { host },
                    `check the fingerprint out of band, then set ${pin} or add it with \`${scan}\``);
            }
            return new HostKeyError(
                `SSH host key ${rejection.fingerprint} does not match the ${rejection.verdict === "mismatch" ? "pinned connection.hostKey" : `key ${knownHostsPathOf(conn)} holds`}: the host key changed or someone is in the middle`,
                { host }, `if the host was reinstalled on purpose, verify the new key out of band and update ${rejection.verdict === "mismatch" ? "connection.hostKey" : "known_hosts"}`);
        }
        if (err.level === "client-authentication") {
            return new AuthenticationError(`SSH server refused the credentials for user '${conn.user}'`, { host },
                "check connection.user and the private key or password (the key's public half must be in the user's authorized_keys)");
        }
        if (/passphrase|privateKey|private key/i.test(err.message)) return privateKeyError(err.message, host);
        return new HostUnreachableError(`cannot reach the SSH server: ${err.code ?? err.message}`, { host },
            "check connection.host and connection.port, and that sshd runs there");
    }

    private collect(channel: ClientChannel, timeoutMs: number, stdin?: string): Promise<ExecResult> {
        return new Promise<ExecResult>((resolve, reject) => {
            const stdout: Buffer[] = [];
            const stderr: Buffer[] = [];
            let exitCode: number | undefined;
            const timer = setTimeout(() => {
                channel.close();
                reject(this.lostCommand(`a command did not finish within ${Math.round(timeoutMs / 1000)} s`));
            }, timeoutMs);
            channel.on("data", (d: Buffer) => stdout.push(d));
            channel.stderr.on("data", (d: Buffer) => stderr.push(d));
            channel.on("exit", (code: number | null) => {
                exitCode = code ?? undefined;
            });
            channel.on("close", () => {
                clearTimeout(timer);
                if (exitCode === undefined) {
                    reject(this.lostCommand("the connection dropped while a command ran"));
                    return;
                }
                resolve({
                    stdout: Buffer.concat(stdout).toString("utf8"),
                    stderr: Buffer.concat(stderr).toString("utf8"),
                    exitCode,
                });
            });
            channel.end(stdin);
        });
    }

    private lostCommand(summary: string): HostUnreachableError {
        this.close();
        const error = new HostUnreachableError(summary, { host: this.label },
            "the change may or may not have happened: run `pulumi refresh`, then `pulumi up` again");
        error.outcomeUnknown = true;
        return error;
    }
}

/**
 * A key ssh2 cannot use. A wrong or missing passphrase is a credential failure like a refused key,
 * so it is an AuthenticationError; ssh2's message names neither the key nor the passphrase.
 */
function privateKeyError(message: string, host: string): AuthenticationError | InputError {
    if (/passphrase/i.test(message)) {
        return new AuthenticationError(`SSH private key could not be decrypted: connection.privateKeyPassphrase is wrong or missing (${message})`,
            { host }, "give the passphrase the key was encrypted with as connection.privateKeyPassphrase, as a secret");
    }
    return new InputError(`SSH private key could not be used: ${message}`, { host },
        "give an OpenSSH or PEM key and, if it is encrypted, privateKeyPassphrase");
}

function openChannel(client: Client, commandLine: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
        client.exec(commandLine, (err, channel) => (err ? reject(err) : resolve(channel)));
    });
}

function knownHostsPathOf(conn: ConnectionInputs): string {
    return conn.knownHostsPath ?? join(homedir(), ".ssh", "known_hosts");
}

/** Returns why a host key is refused, or undefined when it is accepted. */
function verifyHostKey(conn: ConnectionInputs, port: number, key: Buffer): HostKeyRejection | undefined {
    const fingerprint = fingerprintOf(key);
    if (conn.insecureIgnoreHostKey === true) return undefined;
    if (conn.hostKey) {
        return conn.hostKey.trim() === fingerprint ? undefined : { verdict: "mismatch", fingerprint };
    }
    const verdict = checkKnownHosts(readKnownHosts(knownHostsPathOf(conn)), conn.host, port, key);
    return verdict === "match" ? undefined : { verdict, fingerprint };
}

const hosts = new Map<string, SshHost>();

/** The pooled connection for these settings; different credentials never share a connection. */
export function remoteHostFor(connection: ConnectionInputs): RemoteHost {
    const settings = JSON.stringify([connection.host, connection.port ?? 22, connection.user, connection.privateKey,
        connection.privateKeyPassphrase, connection.password, connection.hostKey, connection.knownHostsPath,
        connection.insecureIgnoreHostKey === true, connection.connectTimeout]);
    const key = createHash("sha256").update(settings).digest("hex");
    let host = hosts.get(key);
    if (!host) {
        host = new SshHost(connection);
        hosts.set(key, host);
    }
    return host;
}

/** Ends every pooled connection (tests, and processes that want to exit promptly). */
export function closeAllHosts(): void {
    for (const host of hosts.values()) host.close();
    hosts.clear();
}
