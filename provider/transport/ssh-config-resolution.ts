/**
 * From a resource's `connection` to the endpoints to dial: the target and its jump hosts, each
 * with address, user, credentials and host-key policy. The OpenSSH client config fills what the
 * connection leaves out (explicit fields win), as `ssh` itself would, for the keywords listed in
 * HONOURED_KEYWORDS. Pure but for the injected file reader, so it is unit-tested without a host.
 */
import { readFileSync } from "fs";
import { homedir, userInfo } from "os";
import { isAbsolute, join } from "path";
import SSHConfig from "ssh-config";
import { utils } from "ssh2";
import type { ConnectionInputs, JumpHost } from "../contract";
import { AuthenticationError, InputError } from "../errors";
import { JumpSpec, parseProxyJump } from "./proxy-jump";

/** The ssh_config keywords this package follows; the README lists the same. */
export const HONOURED_KEYWORDS = ["Host", "Match (host, originalhost, user, localuser, all)", "HostName", "User", "Port",
    "IdentityFile", "IdentityAgent", "ProxyJump", "UserKnownHostsFile", "ConnectTimeout"] as const;

export interface Credentials {
    privateKey?: string;
    privateKeyPassphrase?: string;
    password?: string;
    /** ssh-agent socket path. */
    agent?: string;
    /** The agent is the only credential: an empty agent or a missing socket is then an error of its own. */
    agentOnly: boolean;
}

export interface HostKeyPolicy {
    hostKey?: string;
    knownHostsPath: string;
    insecureIgnoreHostKey: boolean;
}

/** One SSH server to log in to: the hypervisor or a jump host. */
export interface Endpoint {
    /** As the user named it (an alias, or the host itself). */
    name: string;
    /** The address dialled (the config's HostName, or the name). */
    host: string;
    port: number;
    user: string;
    credentials: Credentials;
    hostKeys: HostKeyPolicy;
    /** Seconds for the handshake. */
    connectTimeout: number;
}

export interface ResolvedTarget extends Endpoint {
    /** Jump hosts in the order they are dialled; empty for a direct connection. */
    hops: Endpoint[];
    /** The SSH config file read, if one was. */
    configPath?: string;
    /** Settings of the config that were not followed, for the engine's log. */
    warnings: string[];
}

/** What resolution reads from the machine, injectable for tests. */
export interface ResolutionEnv {
    homeDir: string;
    localUser: string;
    /** SSH_AUTH_SOCK of this process. */
    authSock?: string;
    /** A file's text, or undefined when it does not exist. */
    readText(path: string): string | undefined;
}

function readTextOrUndefined(path: string): string | undefined {
    try {
        return readFileSync(path, "utf8");
    } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw e;
    }
}

/** How this process resolves connections: its home, user, SSH_AUTH_SOCK and files. */
export function machineEnv(readText: (path: string) => string | undefined = readTextOrUndefined): ResolutionEnv {
    let localUser = process.env.USER ?? "root";
    try {
        localUser = userInfo().username;
    } catch {
        // No passwd entry for this uid: keep $USER.
    }
    return { homeDir: homedir(), localUser, authSock: process.env.SSH_AUTH_SOCK || undefined, readText };
}

type Settings = Record<string, string | string[]>;

function first(settings: Settings, key: string): string | undefined {
    const value = settings[key];
    return Array.isArray(value) ? value[0] : value;
}

function all(settings: Settings, key: string): string[] {
    const value = settings[key];
    if (value === undefined) return [];
    return (Array.isArray(value) ? value : [value]).flatMap((v) => v.split(/\s+/)).filter(Boolean);
}

interface Tokens {
    alias: string;
    host: string;
    port: number;
    user: string;
}

/** `~` and the `%` tokens OpenSSH expands in file names: %h %p %r %u %n %d %%. */
function expandPath(path: string, tokens: Tokens, env: ResolutionEnv): string {
    const expanded = path.replace(/%([hprund%])/g, (_m, token: string) => ({
        h: tokens.host, p: String(tokens.port), r: tokens.user, u: env.localUser, n: tokens.alias, d: env.homeDir, "%": "%",
    } as Record<string, string>)[token]);
    if (expanded === "~") return env.homeDir;
    if (expanded.startsWith("~/")) return join(env.homeDir, expanded.slice(2));
    return expanded;
}

/** The config's settings for one host name, as OpenSSH computes them (first value wins). */
class ConfigFile {
    private constructor(readonly path: string | undefined, private readonly parsed: SSHConfig | undefined) {}

    static load(connection: ConnectionInputs, env: ResolutionEnv): ConfigFile {
        if (connection.sshConfig === false) return new ConfigFile(undefined, undefined);
        const explicit = typeof connection.sshConfig === "string";
        const path = explicit ? expandHome(connection.sshConfig as string, env) : join(env.homeDir, ".ssh", "config");
        const text = env.readText(path);
        if (text === undefined) {
            if (explicit) {
                throw new InputError(`connection.sshConfig names ${path}, which does not exist`, { host: connection.host },
                    "give the path of an OpenSSH client config file, or leave sshConfig out (~/.ssh/config is read when it exists), or set it to false");
            }
            return new ConfigFile(undefined, undefined);
        }
        try {
            return new ConfigFile(path, SSHConfig.parse(text));
        } catch (error) {
            throw new InputError(`the SSH config ${path} could not be parsed: ${(error as Error).message}`, { host: connection.host },
                "fix the file (`ssh -G HOST` shows what OpenSSH makes of it), or set connection.sshConfig to false");
        }
    }

    settingsFor(name: string, user?: string): Settings {
        if (!this.parsed) return {};
        // matchExec false: `Match exec` would run a shell command from the file inside the provider.
        return this.parsed.compute({ Host: name, ...(user !== undefined && { User: user }) }, { ignoreCase: true, matchExec: false });
    }
}

function expandHome(path: string, env: ResolutionEnv): string {
    if (path === "~") return env.homeDir;
    return path.startsWith("~/") ? join(env.homeDir, path.slice(2)) : path;
}

const WEAKENING = /^(no|off|accept-new)$/i;

function warningsFor(name: string, settings: Settings, config: ConfigFile): string[] {
    const strict = first(settings, "stricthostkeychecking");
    if (strict === undefined || !WEAKENING.test(strict)) return [];
    return [`${config.path} sets StrictHostKeyChecking ${strict} for '${name}': not followed; its host key is verified as always ` +
        "(pin connection.hostKey, or add the key to known_hosts; connection.insecureIgnoreHostKey exists for throwaway labs only)"];
}

function numberSetting(settings: Settings, key: string, config: ConfigFile, name: string): number | undefined {
    const text = first(settings, key);
    if (text === undefined) return undefined;
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < 1) {
        throw new InputError(`${config.path} sets ${key === "port" ? "Port" : "ConnectTimeout"} '${text}' for '${name}', which is not a whole number`,
            { host: name }, "fix the SSH config, or give the value in connection");
    }
    return value;
}

/** The first IdentityFile that exists, read; an encrypted one without a passphrase is skipped when an agent can stand in. */
function identityKey(files: string[], passphrase: string | undefined, agent: string | undefined, env: ResolutionEnv): string | undefined {
    for (const file of files) {
        const text = env.readText(file);
        if (text === undefined) continue;
        const parsed = utils.parseKey(text, passphrase);
        if (parsed instanceof Error && agent) continue;
        return text;
    }
    return undefined;
}

function agentSetting(settings: Settings, tokens: Tokens, env: ResolutionEnv): string | undefined | null {
    const value = first(settings, "identityagent");
    if (value === undefined) return undefined;
    if (value.toLowerCase() === "none") return null;
    if (value === "SSH_AUTH_SOCK") return env.authSock ?? null;
    const variable = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/.exec(value);
    if (variable) return process.env[variable[1]] || null;
    return expandPath(value, tokens, env);
}

interface EndpointRequest {
    name: string;
    port?: number;
    user?: string;
    /** Credentials given explicitly for this endpoint (connection or hop object). */
    privateKey?: string;
    privateKeyPassphrase?: string;
    password?: string;
    agent?: string;
    hostKey?: string;
    knownHostsPath?: string;
}

/** What a jump host may borrow from the target, as OpenSSH's hops use the same keys and agent: never a password, which only its own host may see. */
type HopFallback = Pick<Credentials, "privateKey" | "privateKeyPassphrase" | "agent">;

function hopFallback(target: Credentials): HopFallback | undefined {
    const { privateKey, privateKeyPassphrase, agent } = target;
    return privateKey || agent ? { privateKey, privateKeyPassphrase, agent } : undefined;
}

function resolveEndpoint(request: EndpointRequest, defaults: { user: string; connectTimeout?: number; insecure: boolean; fallback?: HopFallback; knownHostsPath?: string },
    config: ConfigFile, env: ResolutionEnv): { endpoint: Endpoint; settings: Settings } {
    const settings = config.settingsFor(request.name, request.user);
    const hostName = first(settings, "hostname");
    const port = request.port ?? numberSetting(settings, "port", config, request.name) ?? 22;
    const user = request.user ?? first(settings, "user") ?? defaults.user;
    const host = hostName ? expandPath(hostName, { alias: request.name, host: request.name, port, user }, env) : request.name;
    const tokens: Tokens = { alias: request.name, host, port, user };
    const configAgent = agentSetting(settings, tokens, env);
    let credentials: Credentials;
    if (request.privateKey !== undefined || request.password !== undefined) {
        credentials = { privateKey: request.privateKey, privateKeyPassphrase: request.privateKeyPassphrase, password: request.password,
            agent: request.agent, agentOnly: false };
    } else if (request.agent !== undefined) {
        credentials = { agent: request.agent, agentOnly: true };
    } else {
        const agent = configAgent === null ? undefined : configAgent ?? env.authSock;
        const files = all(settings, "identityfile").map((f) => expandPath(f, tokens, env));
        const key = identityKey(files, request.privateKeyPassphrase, agent, env);
        if (key !== undefined) credentials = { privateKey: key, privateKeyPassphrase: request.privateKeyPassphrase, agent, agentOnly: false };
        else if (defaults.fallback) credentials = { ...defaults.fallback, agentOnly: !defaults.fallback.privateKey };
        else if (agent) credentials = { agent, agentOnly: true };
        else credentials = { agentOnly: false };
    }
    const knownHostsFile = all(settings, "userknownhostsfile")[0];
    const knownHostsPath = request.knownHostsPath ?? (knownHostsFile ? expandPath(knownHostsFile, tokens, env) : undefined)
        ?? defaults.knownHostsPath ?? join(env.homeDir, ".ssh", "known_hosts");
    return {
        endpoint: {
            name: request.name, host, port, user, credentials,
            hostKeys: { hostKey: request.hostKey, knownHostsPath: isAbsolute(knownHostsPath) ? knownHostsPath : join(env.homeDir, knownHostsPath),
                insecureIgnoreHostKey: defaults.insecure },
            connectTimeout: defaults.connectTimeout ?? numberSetting(settings, "connecttimeout", config, request.name) ?? 15,
        },
        settings,
    };
}

function hopRequests(value: string | JumpHost[]): EndpointRequest[] {
    if (typeof value === "string") return parseProxyJump(value).map((spec: JumpSpec) => ({ name: spec.host, port: spec.port, user: spec.user }));
    return value.map((hop) => ({ name: hop.host, port: hop.port, user: hop.user, privateKey: hop.privateKey,
        privateKeyPassphrase: hop.privateKeyPassphrase, agent: hop.agent, hostKey: hop.hostKey, knownHostsPath: hop.knownHostsPath }));
}

/** The target and its jump hosts for this connection; throws InputError for a config it cannot follow. */
export function resolveConnection(connection: ConnectionInputs, env: ResolutionEnv): ResolvedTarget {
    const config = ConfigFile.load(connection, env);
    const insecure = connection.insecureIgnoreHostKey === true;
    const { endpoint, settings } = resolveEndpoint({
        name: connection.host, port: connection.port, user: connection.user, privateKey: connection.privateKey,
        privateKeyPassphrase: connection.privateKeyPassphrase, password: connection.password, agent: connection.agent,
        hostKey: connection.hostKey, knownHostsPath: connection.knownHostsPath,
    }, { user: env.localUser, connectTimeout: connection.connectTimeout, insecure }, config, env);
    const warnings = warningsFor(connection.host, settings, config);
    const jumpValue = connection.proxyJump ?? first(settings, "proxyjump");
    const hops = (jumpValue === undefined ? [] : hopRequests(jumpValue)).map((request) => {
        const hop = resolveEndpoint(request, {
            // A hop of the config's ProxyJump uses its own config entry; failing that, the target's key or agent.
            user: connection.user ?? env.localUser, connectTimeout: connection.connectTimeout, insecure,
            fallback: hopFallback(endpoint.credentials), knownHostsPath: connection.knownHostsPath,
        }, config, env);
        warnings.push(...warningsFor(request.name, hop.settings, config));
        return hop.endpoint;
    });
    return { ...endpoint, hops, configPath: config.path, warnings };
}

/** An endpoint is reached with no credential at all: say what to give, before dialling. `hop`: its position among the jump hosts. */
export function assertHasCredentials(endpoint: Endpoint, label: string, hop?: number): void {
    const c = endpoint.credentials;
    if (c.privateKey || c.password || c.agent) return;
    if (hop !== undefined) {
        throw new AuthenticationError(`no SSH credentials for jump host ${hop} (${label}): it has no privateKey or agent of its own, the connection gives no privateKey or agent it could use, ` +
            "no IdentityFile of the SSH config exists for it, and SSH_AUTH_SOCK is not set (the hypervisor's password is never offered to a jump host)", { host: label },
            `give jump host ${hop} its own key (connection.proxyJump as objects: [{ host, user, privateKey }], or an IdentityFile under its Host entry in the SSH config), ` +
            "or load a key it accepts into an agent (SSH_AUTH_SOCK or connection.agent); a privateKey or agent in connection is used for jump hosts too");
    }
    throw new AuthenticationError(`no SSH credentials for ${label}: no privateKey, password or agent was given, no IdentityFile of the SSH config exists, and SSH_AUTH_SOCK is not set`,
        { host: label }, "load your key into an agent (`eval $(ssh-agent) && ssh-add ~/.ssh/id_ed25519`) before running pulumi, or set connection.agent, or pass the key as secret config in connection.privateKey");
}

/** The host identity the rule tables compare: another alias for the same host, port and URI is no change. */
export function resolvedHostAndPort(connection: ConnectionInputs, env: ResolutionEnv): { host: string; port: number } {
    const config = ConfigFile.load(connection, env);
    const settings = config.settingsFor(connection.host, connection.user);
    const port = connection.port ?? numberSetting(settings, "port", config, connection.host) ?? 22;
    const hostName = first(settings, "hostname");
    const user = connection.user ?? first(settings, "user") ?? env.localUser;
    return { host: hostName ? expandPath(hostName, { alias: connection.host, host: connection.host, port, user }, env) : connection.host, port };
}
