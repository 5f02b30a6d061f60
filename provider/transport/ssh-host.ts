/**
 * One SSH connection per host (and credentials), reused across operations and reopened when it
 * drops; through jump hosts, one chain per target whose hops are shared by every target behind
 * them. Errors name the host as user@host:port (and the jump host, with its position) and never
 * include a key or password.
 */
import { createHash } from "crypto";
import { setTimeout as sleep } from "timers/promises";
import { AuthenticationType, AuthHandlerMiddleware, Client, ClientChannel, ConnectConfig } from "ssh2";
import type { ConnectionInputs } from "../contract";
import { AuthenticationError, HostKeyError, HostUnreachableError, InputError, LibvirtLiveError } from "../errors";
import { assertAgentUsable } from "./agent";
import { warnOnce } from "../engine-log";
import { checkKnownHosts, fingerprintOf, HostKeyVerdict, readKnownHosts } from "./host-key";
import { Semaphore } from "./semaphore";
import { assertHasCredentials, Credentials, Endpoint, machineEnv, resolveConnection, ResolvedTarget } from "./ssh-config-resolution";

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

/**
 * Channels per connection, below OpenSSH's MaxSessions (10). A jump host's forwarded channels
 * count too: each target behind it holds one for as long as its connection lives.
 */
export const MAX_CHANNELS_PER_CONNECTION = 8;
const DEFAULT_EXEC_TIMEOUT_MS = 10 * 60 * 1000;
/** Pauses before asking a live server again for a session it refused: about 6 s in all. */
const SESSION_RETRY_DELAYS_MS = [100, 200, 400, 800, 1600, 3200];

/** Connections past their handshake that have neither closed nor failed. */
const live = new WeakSet<Client>();

type HostKeyRejection = { verdict: Exclude<HostKeyVerdict, "match"> | "mismatch"; fingerprint: string };

/** Where a connection sits in its chain: the hypervisor, or jump host N (1 = dialled first). */
type Role = { kind: "target" } | { kind: "hop"; position: number };

/** Which jump host an error happened at, so the target can name it (hops are shared, targets are not). */
const failedHop = new WeakMap<Error, { position: number; label: string }>();

function endpointLabel(endpoint: Endpoint): string {
    const address = `${endpoint.user}@${endpoint.host}:${endpoint.port}`;
    return endpoint.name === endpoint.host ? address : `${address} (${endpoint.name})`;
}

class SshConnection implements RemoteHost {
    readonly label: string;
    /** The label and, behind jump hosts, the way there: what the target's own errors name. */
    private readonly where: string;
    private client?: Promise<Client>;
    private readonly channels = new Semaphore(MAX_CHANNELS_PER_CONNECTION);

    constructor(
        private readonly endpoint: Endpoint,
        private readonly role: Role,
        /** The jump host to tunnel through (picked at each connect: a full one is not waited for), or none. */
        private readonly upstream: (() => SshConnection) | undefined,
        /** For a target: the jump hosts, to name one in an error. */
        private readonly hopLabels: readonly string[] = [],
        /** The SSH config the endpoint was resolved with, for messages. */
        private readonly configPath?: string,
    ) {
        this.label = endpointLabel(endpoint);
        this.where = hopLabels.length ? `${this.label} via ${hopLabels.join(" → ")}` : this.label;
    }

    /** Free channel slots: a jump host with none left makes its targets open another connection to it. */
    get freeChannels(): number {
        return this.channels.free;
    }

    async exec(commandLine: string, stdin?: string, timeoutMs = DEFAULT_EXEC_TIMEOUT_MS): Promise<ExecResult> {
        const { channel, release } = await this.openSession(commandLine);
        try {
            return await this.collect(channel, timeoutMs, stdin);
        } finally {
            release();
        }
    }

    /**
     * A session channel running the command, with the slot it holds. The command is not sent
     * until the channel opens, so a failure here changes nothing. A dead connection is replaced,
     * once. A live one whose server refuses one more session is kept and asked again after a
     * short pause; when others of ours were open (its MaxSessions is below ours) it holds no more
     * than those at once from then on. One that kept refusing with none of ours open (sessions of
     * abandoned commands fill it) is replaced, once.
     */
    private async openSession(commandLine: string): Promise<{ channel: ClientChannel; release: () => void }> {
        let replaced = false;
        for (let refusals = 0; ;) {
            const release = await this.channels.acquire();
            const client = await this.connected().catch((error: unknown) => {
                release();
                throw error;
            });
            try {
                return { channel: await openChannel(client, commandLine), release };
            } catch (error) {
                release();
                const othersOpen = this.channels.inUse;
                if (!live.has(client)) {
                    if (replaced) throw this.sessionError(error as Error, "the connection dropped before the command was sent");
                    replaced = true;
                    this.replace(client);
                    continue;
                }
                if (othersOpen > 0) this.channels.lower(othersOpen);
                const delay = SESSION_RETRY_DELAYS_MS[refusals++];
                if (delay !== undefined) {
                    await sleep(delay);
                } else if (othersOpen === 0 && !replaced) {
                    replaced = true;
                    refusals = 0;
                    this.replace(client);
                } else {
                    throw this.sessionError(error as Error, `the SSH server refused a session ${refusals} times`);
                }
            }
        }
    }

    private sessionError(error: Error, summary: string): HostUnreachableError {
        return new HostUnreachableError(`${summary} (${error.message}); nothing was run`, { host: this.where },
            "sshd's MaxSessions (sshd_config) may be lower than the channels in use, or the connection is failing; run again, or raise MaxSessions");
    }

    /** Ends this one client (never a newer one another command already opened). */
    private replace(client: Client): void {
        this.dropIf(client);
        client.end();
    }

    /** A TCP stream from this host to the next one in the chain; it holds a channel slot until it closes. */
    async forward(host: string, port: number): Promise<ClientChannel> {
        const release = await this.channels.acquire();
        try {
            const client = await this.connected();
            let stream: ClientChannel;
            try {
                stream = await forwardOut(client, host, port);
            } catch (error) {
                // A refusal from this host ("Connect failed") is the next host's problem: no retry.
                if ((error as { reason?: unknown }).reason !== undefined || live.has(client)) throw error;
                this.dropIf(client);
                stream = await forwardOut(await this.connected(), host, port);
            }
            stream.once("close", release);
            return stream;
        } catch (error) {
            release();
            throw error;
        }
    }

    close(): void {
        void this.client?.then((c) => {
            live.delete(c);
            c.end();
        }, () => undefined);
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

    private async connect(): Promise<Client> {
        const endpoint = this.endpoint;
        try {
            assertHasCredentials(endpoint, this.where, this.role.kind === "hop" ? this.role.position : undefined);
            const credentials = endpoint.credentials;
            if (credentials.agentOnly && credentials.agent) await assertAgentUsable(credentials.agent, this.where);
            const sock = this.upstream ? await this.tunnel(this.upstream()) : undefined;
            return await this.handshake(sock);
        } catch (error) {
            throw this.named(error as Error);
        }
    }

    private async tunnel(hop: SshConnection): Promise<ClientChannel> {
        try {
            return await hop.forward(this.endpoint.host, this.endpoint.port);
        } catch (error) {
            if (error instanceof LibvirtLiveError) throw error;
            const reason = (error as Error).message;
            throw new HostUnreachableError(`cannot reach the SSH server from ${hop.describe()}: ${reason}`, { host: this.where },
                "check the host and port, that sshd runs there, and that the jump host may connect to it (`ssh -J` does the same)");
        }
    }

    /** "jump host 2 (root@10.0.0.1:22)" or the plain label. */
    describe(): string {
        return this.role.kind === "hop" ? `jump host ${this.role.position} (${this.label})` : this.label;
    }

    /** Marks an error with the jump host it happened at; a target rewrites it to name that hop and itself. */
    private named(error: Error): Error {
        if (this.role.kind === "hop") {
            if (!failedHop.has(error)) failedHop.set(error, { position: this.role.position, label: this.label });
            return error;
        }
        const hop = failedHop.get(error);
        if (!hop || !(error instanceof LibvirtLiveError)) return error;
        const ErrorClass = error.constructor as new (summary: string, context: LibvirtLiveError["context"], hint: string) => LibvirtLiveError;
        const of = this.hopLabels.length;
        return new ErrorClass(`at jump host ${hop.position} of ${of} (${hop.label}) on the way to ${this.label}: ${error.summary}`,
            { ...error.context, host: this.where }, error.hint);
    }

    private handshake(sock: ClientChannel | undefined): Promise<Client> {
        const endpoint = this.endpoint;
        const credentials = endpoint.credentials;
        let rejection: HostKeyRejection | undefined;
        const config: ConnectConfig = {
            host: endpoint.host,
            port: endpoint.port,
            username: endpoint.user,
            privateKey: credentials.privateKey,
            passphrase: credentials.privateKeyPassphrase,
            password: credentials.password,
            agent: credentials.agent,
            authHandler: authOrder(credentials),
            ...(sock && { sock }),
            readyTimeout: endpoint.connectTimeout * 1000,
            keepaliveInterval: 10_000,
            keepaliveCountMax: 3,
            hostVerifier: (key: Buffer): boolean => {
                rejection = verifyHostKey(endpoint, key);
                return rejection === undefined;
            },
        };
        return new Promise<Client>((resolve, reject) => {
            const client = new Client();
            let ready = false;
            client.once("ready", () => {
                ready = true;
                live.add(client);
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
            // A tunnel that closes before the handshake ends (the jump host dropped) must fail the attempt.
            sock?.once("close", () => {
                if (!ready) reject(this.connectError(Object.assign(new Error("the jump host closed the tunnel"), { code: "ECONNRESET" }), rejection));
            });
            try {
                client.connect(config);
            } catch (err) {
                // ssh2 throws synchronously for an unreadable key; its message holds no key material.
                reject(privateKeyError((err as Error).message, this.where));
            }
        });
    }

    private dropIf(client: Client): void {
        live.delete(client);
        void this.client?.then((current) => {
            if (current === client) this.client = undefined;
        }, () => undefined);
    }

    private connectError(err: Error & { level?: string; code?: string }, rejection?: HostKeyRejection): Error {
        const host = this.where;
        const endpoint = this.endpoint;
        const keys = endpoint.hostKeys;
        const pinField = this.role.kind === "hop" ? `hostKey of jump host ${this.role.position} in connection.proxyJump` : "connection.hostKey";
        if (rejection) {
            const pin = `${pinField} = "${rejection.fingerprint}"`;
            // The file this connection reads, not ~/.ssh/known_hosts: adding the key elsewhere would not help.
            const scan = `ssh-keyscan -p ${endpoint.port} ${endpoint.host} >> ${keys.knownHostsPath}`;
            if (rejection.verdict === "revoked") {
                return new HostKeyError(`SSH host key ${rejection.fingerprint} is marked @revoked in ${keys.knownHostsPath}: the host presents a key that must not be trusted (a stolen or retired key)`,
                    { host }, "have the host's administrator install a new host key and check it out of band; remove the @revoked line only if the key was revoked by mistake");
            }
            if (rejection.verdict === "unknown") {
                return new HostKeyError(`SSH host key ${rejection.fingerprint} is not in ${keys.knownHostsPath}`, { host },
                    `check the fingerprint out of band, then set ${pin} or add it with \`${scan}\``);
            }
            return new HostKeyError(
                `SSH host key ${rejection.fingerprint} does not match the ${rejection.verdict === "mismatch" ? `pinned ${pinField}` : `key ${keys.knownHostsPath} holds`}: the host key changed or someone is in the middle`,
                { host }, `if the host was reinstalled on purpose, verify the new key out of band and update ${rejection.verdict === "mismatch" ? pinField : "known_hosts"}`);
        }
        if (err.level === "client-authentication") {
            const using = [endpoint.credentials.privateKey && "a private key", endpoint.credentials.password && "a password",
                endpoint.credentials.agent && `the ssh-agent at ${endpoint.credentials.agent}`].filter(Boolean).join(", ");
            return new AuthenticationError(`SSH server refused the credentials for user '${endpoint.user}' (tried ${using})`, { host },
                "check connection.user (or the SSH config's User) and the private key, agent or password (the key's public half must be in the user's authorized_keys)");
        }
        if (/passphrase|privateKey|private key/i.test(err.message)) return privateKeyError(err.message, host);
        if (err.code === "ENOTFOUND" || err.code === "EAI_AGAIN") return this.unknownHost(err.code);
        return new HostUnreachableError(`cannot reach the SSH server: ${err.code ?? err.message}`, { host },
            this.role.kind === "hop"
                ? "check the jump host's address and port (connection.proxyJump, or the SSH config's ProxyJump), and that sshd runs there; nothing was changed"
                : "check connection.host and connection.port, and that sshd runs there");
    }

    private unknownHost(code: string): Error {
        const endpoint = this.endpoint;
        const read = this.configPath;
        const config = !read ? ", and no SSH config was read"
            : endpoint.name === endpoint.host ? `, and ${read} gives '${endpoint.name}' no HostName` : ` (the HostName ${read} gives '${endpoint.name}')`;
        return new HostUnreachableError(`cannot resolve '${endpoint.host}' (${code}): it is no host name this machine knows${config}`, { host: this.where },
            endpoint.name !== endpoint.host && read ? `fix the HostName of \`Host ${endpoint.name}\` in ${read}, or give the host's address in connection.host`
                : `add \`Host ${endpoint.name}\` with a HostName to ${read ?? "~/.ssh/config (or the file connection.sshConfig names)"}, or give the host's address in connection.host`);
    }

    /** The command's output and exit code. Past `timeoutMs` only its own channel is closed: other commands on the connection go on. */
    private collect(channel: ClientChannel, timeoutMs: number, stdin?: string): Promise<ExecResult> {
        return new Promise<ExecResult>((resolve, reject) => {
            const stdout: Buffer[] = [];
            const stderr: Buffer[] = [];
            let exitCode: number | undefined;
            let signal: string | undefined;
            const timer = setTimeout(() => {
                channel.close();
                reject(this.lostCommand(`a command did not finish within ${Math.round(timeoutMs / 1000)} s and was abandoned`));
            }, timeoutMs);
            channel.on("data", (d: Buffer) => stdout.push(d));
            channel.stderr.on("data", (d: Buffer) => stderr.push(d));
            channel.on("exit", (code: number | null, signalName?: string) => {
                exitCode = code ?? undefined;
                signal = signalName ?? undefined;
            });
            channel.on("close", () => {
                clearTimeout(timer);
                if (exitCode === undefined) {
                    reject(this.lostCommand(signal ? `the remote shell was killed by ${signal} while a command ran` : "the connection dropped while a command ran"));
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
        const error = new HostUnreachableError(summary, { host: this.where },
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

/**
 * OpenSSH's order: the key, then the agent, then the password, each only when the server lists
 * its method. ssh2's own order sends a password first, to any server, whatever it accepts.
 */
function authOrder(credentials: Credentials): AuthHandlerMiddleware {
    const methods: Array<[AuthenticationType, AuthenticationType]> = [["none", "none"]];
    if (credentials.privateKey) methods.push(["publickey", "publickey"]);
    if (credentials.agent) methods.push(["agent", "publickey"]);
    if (credentials.password !== undefined) methods.push(["password", "password"]);
    return (authsLeft) => {
        for (let next = methods.shift(); next; next = methods.shift()) {
            // `authsLeft` is null before the first attempt ("none"), then the server's list.
            if (next[0] === "none" || authsLeft?.includes(next[1])) return next[0];
        }
        return false;
    };
}

function openChannel(client: Client, commandLine: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
        client.exec(commandLine, (err, channel) => (err ? reject(err) : resolve(channel)));
    });
}

function forwardOut(client: Client, host: string, port: number): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
        client.forwardOut("127.0.0.1", 0, host, port, (err, stream) => (err ? reject(err) : resolve(stream)));
    });
}

/** Returns why a host key is refused, or undefined when it is accepted. */
function verifyHostKey(endpoint: Endpoint, key: Buffer): HostKeyRejection | undefined {
    const fingerprint = fingerprintOf(key);
    const policy = endpoint.hostKeys;
    if (policy.insecureIgnoreHostKey) return undefined;
    if (policy.hostKey) {
        return policy.hostKey.trim() === fingerprint ? undefined : { verdict: "mismatch", fingerprint };
    }
    const verdict = checkKnownHosts(readKnownHosts(policy.knownHostsPath), endpoint.host, endpoint.port, key);
    return verdict === "match" ? undefined : { verdict, fingerprint };
}

function settingsKey(endpoints: readonly Endpoint[]): string {
    const settings = JSON.stringify(endpoints.map((e) => [e.host, e.port, e.user, e.credentials.privateKey, e.credentials.privateKeyPassphrase,
        e.credentials.password, e.credentials.agent, e.hostKeys.hostKey, e.hostKeys.knownHostsPath, e.hostKeys.insecureIgnoreHostKey,
        e.connectTimeout]));
    return createHash("sha256").update(settings).digest("hex");
}

const targets = new Map<string, SshConnection>();
/** Per jump-host chain prefix: its connections, another one opened when all are full. */
const hopPools = new Map<string, SshConnection[]>();

/** A connection to the last hop of `chain` with a channel slot free, opening one when all are full. */
function hopConnection(chain: readonly Endpoint[], configPath: string | undefined): SshConnection {
    const key = settingsKey(chain);
    const pool = hopPools.get(key) ?? [];
    hopPools.set(key, pool);
    const free = pool.find((c) => c.freeChannels > 0);
    if (free) return free;
    const upstream = chain.length > 1 ? () => hopConnection(chain.slice(0, -1), configPath) : undefined;
    const connection = new SshConnection(chain[chain.length - 1], { kind: "hop", position: chain.length }, upstream, [], configPath);
    pool.push(connection);
    return connection;
}

/** Connections already resolved in this process (a run resolves each resource's connection per operation). */
const resolved = new Map<string, SshConnection>();

/** The pooled connection for these settings; different credentials never share a connection. */
export function remoteHostFor(connection: ConnectionInputs): RemoteHost {
    const env = machineEnv();
    // Like one `ssh` invocation, a process reads the SSH config once per connection (and agent socket).
    const asGiven = createHash("sha256").update(JSON.stringify([connection, env.authSock ?? null])).digest("hex");
    const known = resolved.get(asGiven);
    if (known) return known;
    const target: ResolvedTarget = resolveConnection(connection, env);
    for (const warning of target.warnings) warnOnce(warning);
    const key = settingsKey([...target.hops, target]);
    let host = targets.get(key);
    if (!host) {
        const hops = target.hops;
        const upstream = hops.length ? () => hopConnection(hops, target.configPath) : undefined;
        host = new SshConnection(target, { kind: "target" }, upstream, hops.map(endpointLabel), target.configPath);
        targets.set(key, host);
    }
    resolved.set(asGiven, host);
    return host;
}

/** Ends every pooled connection (tests, and processes that want to exit promptly). */
export function closeAllHosts(): void {
    for (const host of targets.values()) host.close();
    for (const pool of hopPools.values()) for (const hop of pool) hop.close();
    targets.clear();
    hopPools.clear();
    resolved.clear();
}
