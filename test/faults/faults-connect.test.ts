/**
 * The host cannot be used: nothing listens on the port, the port holds something that is not sshd
 * (silent, or speaking another protocol), the user does not exist. Each gives a clear error on the
 * server's answer (well inside connection.connectTimeout, which bounds only a silent peer), and the
 * domain XML is byte-identical before and after. Guest pll-fault2 (read only); no sshd is touched.
 * No test asserts a wall time of its own: on a loaded machine a handshake alone takes seconds.
 */
import assert from "node:assert/strict";
import { AddressInfo, createServer, Server, Socket } from "net";
import type { AttachedDiskInputs, AttachedDiskOutputs, ConnectionInputs } from "../../provider/contract";
import { AuthenticationError, HostUnreachableError, providers } from "../../provider/index";
import { configXml, createImage, liveXml, rejectsWith, removeFiles, resetGuest, RigEnv, rigConnection, rigUp, typed } from "../rig/rig-env";

const GUEST = "pll-fault2";

function listen(onConnection: (socket: Socket) => void): Promise<Server> {
    const server = createServer(onConnection);
    return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

describe("faults: host unreachable, wrong port, wrong user (pll-fault2)", function () {
    this.timeout(60_000);
    const disks = typed<AttachedDiskInputs, AttachedDiskOutputs>(providers.attachedDisk);
    let env: RigEnv;
    let source = "";
    const servers: Server[] = [];
    const sockets: Socket[] = [];

    before(function () {
        this.timeout(300_000);
        env = rigUp();
        resetGuest(GUEST); // a background reset of an earlier suite may still be booting it
        source = createImage(env, "connect");
    });

    after(() => {
        for (const s of sockets) s.destroy();
        for (const s of servers) s.close();
        removeFiles([source]);
    });

    /** A connect timeout that an answer from the peer never comes near: a failure before it came from that answer, not from the timer. */
    const ANSWER_BOUND_SECONDS = 60;

    /** Runs a create that must fail; returns the error; checks it came within `limitSeconds` (a timer's bound) and that nothing changed. */
    async function failsFast<E extends Error>(connection: ConnectionInputs, type: abstract new (...args: never[]) => E, patterns: RegExp[], limitSeconds: number): Promise<E> {
        const live = liveXml(GUEST);
        const config = configXml(GUEST);
        const started = Date.now();
        const error = await rejectsWith(disks.create({ connection, domain: GUEST, source }), type, patterns);
        const seconds = (Date.now() - started) / 1000;
        assert.ok(seconds < limitSeconds, `${seconds.toFixed(2)} s: not bounded by ${limitSeconds} s`);
        assert.equal(liveXml(GUEST), live, "live XML byte-identical");
        assert.equal(configXml(GUEST), config, "config XML byte-identical");
        assert.ok(!error.message.includes("PRIVATE KEY"), "no key in the message");
        return error;
    }

    it("nothing listening (127.0.0.1, a closed port): HostUnreachableError ECONNREFUSED on the refusal, not after connectTimeout", async () => {
        const server = await listen(() => undefined);
        const port = (server.address() as AddressInfo).port;
        await new Promise((r) => server.close(r));
        await failsFast(rigConnection(env, { port, connectTimeout: ANSWER_BOUND_SECONDS }), HostUnreachableError, [
            /cannot reach the SSH server: ECONNREFUSED/, new RegExp(`root@127\\.0\\.0\\.1:${port}`), /Fix: check connection.host and connection.port/,
        ], ANSWER_BOUND_SECONDS);
    });

    it("wrong port, silent listener: HostUnreachableError after connectTimeout (3 s), not the 10-minute command bound", async () => {
        const server = await listen((socket) => sockets.push(socket));
        servers.push(server);
        const port = (server.address() as AddressInfo).port;
        const started = Date.now();
        await failsFast(rigConnection(env, { port, connectTimeout: 3 }), HostUnreachableError, [
            /cannot reach the SSH server: .*(handshake|timed out)/i, new RegExp(`:${port}`),
        ], ANSWER_BOUND_SECONDS);
        assert.ok(Date.now() - started >= 2900, "it waited the connect timeout");
    });

    it("wrong port, another protocol answers (HTTP): HostUnreachableError on that answer, not after connectTimeout", async () => {
        const server = await listen((socket) => socket.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"));
        servers.push(server);
        const port = (server.address() as AddressInfo).port;
        await failsFast(rigConnection(env, { port, connectTimeout: ANSWER_BOUND_SECONDS }), HostUnreachableError, [/cannot reach the SSH server/, new RegExp(`:${port}`)], ANSWER_BOUND_SECONDS);
    });

    it("wrong user (no such account) on the rig's sshd: AuthenticationError naming the user, on the refusal (no retry loop, no timer)", async () => {
        await failsFast(rigConnection(env, { user: "pll-nobody", connectTimeout: ANSWER_BOUND_SECONDS }), AuthenticationError, [
            /SSH server refused the credentials for user 'pll-nobody'/, /pll-nobody@127\.0\.0\.1:2222/, /Fix: check connection.user/,
        ], ANSWER_BOUND_SECONDS);
    });
});
