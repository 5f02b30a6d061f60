import assert from "node:assert/strict";
import { InputError } from "../../provider/errors";
import { parseProxyJump } from "../../provider/transport/proxy-jump";
import { isProxyJump } from "../../provider/validation";

describe("proxy-jump: OpenSSH ProxyJump strings", () => {
    it("one hop: host, user@host, user@host:port", () => {
        assert.deepEqual(parseProxyJump("bastion"), [{ host: "bastion" }]);
        assert.deepEqual(parseProxyJump("ops@bastion"), [{ host: "bastion", user: "ops" }]);
        assert.deepEqual(parseProxyJump("ops@bastion:2200"), [{ host: "bastion", port: 2200, user: "ops" }]);
    });

    it("several hops, in dialling order, spaces after commas tolerated", () => {
        assert.deepEqual(parseProxyJump("user@bastion:22,user@inner"), [
            { host: "bastion", port: 22, user: "user" }, { host: "inner", user: "user" }]);
        assert.deepEqual(parseProxyJump("a, b:23"), [{ host: "a" }, { host: "b", port: 23 }]);
    });

    it("ssh:// URIs, bracketed IPv6 with and without port, bare IPv6", () => {
        assert.deepEqual(parseProxyJump("ssh://ops@10.0.0.1:2222"), [{ host: "10.0.0.1", port: 2222, user: "ops" }]);
        assert.deepEqual(parseProxyJump("[fd00::1]:2201"), [{ host: "fd00::1", port: 2201 }]);
        assert.deepEqual(parseProxyJump("root@[fd00::1]"), [{ host: "fd00::1", user: "root" }]);
        assert.deepEqual(parseProxyJump("fd00::1"), [{ host: "fd00::1" }]);
    });

    it("a user name may hold '@' (the last one separates the host)", () => {
        assert.deepEqual(parseProxyJump("me@corp.example@bastion"), [{ host: "bastion", user: "me@corp.example" }]);
    });

    it("none and an empty value mean no jump host", () => {
        assert.deepEqual(parseProxyJump("none"), []);
        assert.deepEqual(parseProxyJump("  "), []);
    });

    for (const [value, why] of [
        ["bastion:0", /invalid port/], ["bastion:65536", /invalid port/], ["bastion:22x", /invalid port/],
        ["a,,b", /hop 2 .* is empty/], ["@bastion", /invalid user/], ["bastion;touch x", /characters/],
        ["$(id)@bastion", /characters/], ["bastion x", /characters/], ["ops@", /invalid host/],
    ] as const) {
        it(`refuses ${JSON.stringify(value)} naming the hop`, () => {
            assert.throws(() => parseProxyJump(value), (error: Error) => {
                assert.ok(error instanceof InputError, error.name);
                assert.match(error.message, why);
                assert.match(error.message, /connection\.proxyJump hop \d/);
                assert.match(error.message, /Fix: write jump hosts as OpenSSH does/);
                return true;
            });
        });
    }

    it("check(): strings and hop objects are validated, hops named by position", () => {
        assert.equal(isProxyJump("root@bastion,root@inner:2222"), undefined);
        assert.equal(isProxyJump([{ host: "bastion", port: 22, user: "root", hostKey: "SHA256:" + "a".repeat(43) }]), undefined);
        assert.match(isProxyJump("bastion:99999") ?? "", /invalid port/);
        assert.match(isProxyJump([{ host: "ok" }, { host: "" }]) ?? "", /^hop 2/);
        assert.match(isProxyJump([{ host: "b", port: 0 }]) ?? "", /hop 1 .*at least 1/);
        assert.match(isProxyJump([{ host: "b", hostKey: "md5:xx" }]) ?? "", /hop 1 .*SHA256/);
        assert.match(isProxyJump([{ host: "b\nx" }]) ?? "", /line break/);
        assert.match(isProxyJump(42) ?? "", /must be a string/);
    });
});
