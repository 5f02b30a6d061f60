import assert from "node:assert/strict";
import { UNKNOWN_VALUE } from "../../provider/rules/rule-table";
import {
    InputChecks, integerAtLeast, isAbsolutePath, isBoolean, isDomainName, isFingerprint, isMac, isMemorySize, isSerial, isText, isXmlText, oneOf,
    placementChecks,
} from "../../provider/validation";

/** The reason a single check gives, through InputChecks as the providers use it. */
function reasonFor(check: (v: unknown) => string | undefined, value: unknown): string | undefined {
    const failures = new InputChecks({ x: value }).field("x", check).failures;
    assert.ok(failures.length <= 1);
    return failures[0]?.reason;
}

const accepts = (check: (v: unknown) => string | undefined, value: unknown): void =>
    assert.equal(reasonFor(check, value), undefined, `expected ${JSON.stringify(value)} to pass`);
const refuses = (check: (v: unknown) => string | undefined, value: unknown, pattern?: RegExp): void => {
    const reason = reasonFor(check, value);
    assert.ok(reason !== undefined, `expected ${JSON.stringify(value)} to fail`);
    assert.ok(reason.startsWith("x: "), reason);
    if (pattern) assert.match(reason, pattern);
};

describe("validation: InputChecks", () => {
    it("records property and a reason prefixed with the path", () => {
        const checks = new InputChecks({ bus: "floppy" }).field("bus", oneOf("virtio", "scsi"));
        assert.deepEqual(checks.failures, [{ property: "bus", reason: `bus: must be one of "virtio", "scsi"` }]);
    });

    it("follows dotted paths into nested objects", () => {
        const failures = new InputChecks({ connection: { port: 0 } }).field("connection.port", integerAtLeast(1)).failures;
        assert.equal(failures.length, 1);
        assert.equal(failures[0].property, "connection.port");
        assert.match(failures[0].reason, /^connection\.port: must be a whole number of at least 1 \(got 0\)$/);
    });

    it("reports a missing required field, and skips a missing optional one", () => {
        const checks = new InputChecks({}).field("domain", isText, true).field("serial", isSerial);
        assert.deepEqual(checks.failures, [{ property: "domain", reason: "domain is required" }]);
    });

    it("treats null like absent", () => {
        assert.deepEqual(new InputChecks({ domain: null }).field("domain", isText, true).failures,
            [{ property: "domain", reason: "domain is required" }]);
        assert.deepEqual(new InputChecks({ domain: null }).field("domain", isText).failures, []);
    });

    it("skips values unknown during preview, even when required", () => {
        let called = false;
        const spy = (): string => { called = true; return "never"; };
        const checks = new InputChecks({ memory: UNKNOWN_VALUE, connection: { host: UNKNOWN_VALUE } })
            .field("memory", spy, true)
            .field("connection.host", isText, true);
        assert.deepEqual(checks.failures, []);
        assert.equal(called, false);
    });

    it("does not run the check of a missing path under a non-object parent", () => {
        const failures = new InputChecks({ connection: "text" }).field("connection.host", isText, true).failures;
        assert.deepEqual(failures, [{ property: "connection.host", reason: "connection.host is required" }]);
    });

    it("collects failures of several fields in order", () => {
        const failures = new InputChecks({ a: "", b: 1.5 }).field("a", isText).field("b", integerAtLeast(1)).field("c", isText, true).failures;
        assert.deepEqual(failures.map((f) => f.property), ["a", "b", "c"]);
    });
});

describe("validation: checks", () => {
    it("isText", () => {
        accepts(isText, "vm1");
        accepts(isText, "a b\tc");
        refuses(isText, "", /non-empty string/);
        refuses(isText, 5, /non-empty string/);
        refuses(isText, {}, /non-empty string/);
        refuses(isText, "a\nb", /NUL or line break/);
        refuses(isText, "a\rb", /NUL or line break/);
        refuses(isText, "a\0b", /NUL or line break/);
    });

    it("isDomainName refuses a name virsh would read as a domain ID or UUID first", () => {
        for (const ok of ["vm1", "5a", "-5", "99999999999", "web 01", "19d2c9b3-01b3-5ede-647e-260eab3fb9f", "19D2C9B301B35EDE647E260EAB3FB9F0"]) {
            accepts(isDomainName, ok);
        }
        refuses(isDomainName, "5", /"5" is read by virsh as a domain ID before it is read as a name, so another domain could be changed: give the domain's name; .*virsh domrename/);
        for (const id of ["+0042", "-0", "2147483647"]) refuses(isDomainName, id, /as a domain ID/);
        refuses(isDomainName, "19d2c9b3-01b3-5ede-647e-260eab3fb9f0", /as a domain UUID/);
        refuses(isDomainName, "01234567 89ab cdef 0123 456789abcdef", /as a domain UUID/);
        refuses(isDomainName, " vm1", /white space/);
        refuses(isDomainName, "", /non-empty string/);
    });

    it("oneOf", () => {
        const bus = oneOf("virtio", "scsi", "sata", "ide");
        for (const ok of ["virtio", "scsi", "sata", "ide"]) accepts(bus, ok);
        refuses(bus, "floppy", /must be one of "virtio", "scsi", "sata", "ide"/);
        refuses(bus, "VIRTIO");
        refuses(bus, 1);
        refuses(bus, "");
    });

    it("integerAtLeast(1) refuses 0, -1 and 1.5", () => {
        const atLeastOne = integerAtLeast(1);
        accepts(atLeastOne, 1);
        accepts(atLeastOne, 64);
        refuses(atLeastOne, 0, /at least 1 \(got 0\)/);
        refuses(atLeastOne, -1, /got -1/);
        refuses(atLeastOne, 1.5, /got 1\.5/);
        refuses(atLeastOne, "2", /got "2"/);
        refuses(atLeastOne, NaN);
        refuses(atLeastOne, Infinity);
    });

    it("integerAtLeast(0) accepts 0", () => {
        accepts(integerAtLeast(0), 0);
        refuses(integerAtLeast(0), -1);
        refuses(integerAtLeast(0), 0.5);
    });

    it("isBoolean", () => {
        accepts(isBoolean, true);
        accepts(isBoolean, false);
        refuses(isBoolean, "true", /true or false/);
        refuses(isBoolean, 1);
    });

    it("isMemorySize", () => {
        accepts(isMemorySize, "512MiB");
        accepts(isMemorySize, "4GiB");
        accepts(isMemorySize, "1.5G");
        accepts(isMemorySize, 512);
        refuses(isMemorySize, "512", /needs a unit/);
        refuses(isMemorySize, "512XB", /unknown unit/);
        refuses(isMemorySize, "1MiB", /most likely a unit mistake/);
        refuses(isMemorySize, 0);
        refuses(isMemorySize, -1);
        refuses(isMemorySize, NaN);
        refuses(isMemorySize, true, /must be a size/);
        refuses(isMemorySize, { size: 1 }, /must be a size/);
    });

    it("isMemorySize strips the internal field name from the message", () => {
        const reason = reasonFor(isMemorySize, "512");
        assert.ok(reason);
        assert.ok(!reason.includes("size: "), reason);
        assert.match(reason, /^x: "512" needs a unit/);
    });

    it("isAbsolutePath", () => {
        accepts(isAbsolutePath, "/var/lib/libvirt/images/a.qcow2");
        accepts(isAbsolutePath, "/dev/vg0/data");
        refuses(isAbsolutePath, "images/a.qcow2", /absolute path/);
        refuses(isAbsolutePath, "~/a.img", /absolute path/);
        refuses(isAbsolutePath, "", /non-empty/);
        refuses(isAbsolutePath, "/a\nb", /NUL or line break/);
        refuses(isAbsolutePath, 7);
    });

    it("isMac", () => {
        accepts(isMac, "52:54:00:12:34:56");
        accepts(isMac, "52:54:00:AB:cd:Ef");
        accepts(isMac, "00:00:00:00:00:00");
        refuses(isMac, "zz", /must look like 52:54:00:12:34:56/);
        refuses(isMac, "52-54-00-12-34-56", /must look like/);
        refuses(isMac, "52:54:00:12:34", /must look like/);
        refuses(isMac, "52:54:00:12:34:56:78", /must look like/);
        refuses(isMac, "52:54:00:12:34:5g", /must look like/);
        refuses(isMac, 525400123456, /must look like/);
    });

    it("isMac refuses multicast addresses (odd first octet)", () => {
        refuses(isMac, "01:00:5e:00:00:01", /multicast/);
        refuses(isMac, "53:54:00:12:34:56", /multicast/);
        refuses(isMac, "ff:ff:ff:ff:ff:ff", /multicast/);
        accepts(isMac, "fe:54:00:12:34:56");
    });

    it("isFingerprint", () => {
        const good = "SHA256:" + "A".repeat(42) + "+";
        accepts(isFingerprint, good);
        accepts(isFingerprint, "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s");
        refuses(isFingerprint, good + "=", /OpenSSH fingerprint/);
        refuses(isFingerprint, "SHA256:" + "A".repeat(42), /OpenSSH fingerprint/);
        refuses(isFingerprint, "MD5:aa:bb", /OpenSSH fingerprint/);
        refuses(isFingerprint, "sha256:" + "A".repeat(43), /OpenSSH fingerprint/);
        refuses(isFingerprint, "SHA256:" + "A".repeat(42) + "-", /OpenSSH fingerprint/);
    });

    it("isSerial", () => {
        accepts(isSerial, "DATA-01_a.b+c d");
        accepts(isSerial, "X".repeat(20));
        refuses(isSerial, "X".repeat(21), /at most 20/);
        refuses(isSerial, "", /at most 20/);
        refuses(isSerial, "<&>", /letters, digits/);
        refuses(isSerial, 12);
    });

    it("text that reaches libvirt: white space at either end is refused, naming the value to write (the XML reader trims it)", () => {
        const trimmed = /starts or ends with white space, which libvirt's XML does not keep \(every pulumi up would then show a replacement\): write /;
        for (const check of [isXmlText, isAbsolutePath, isSerial]) {
            const good = check === isAbsolutePath ? "/images/d.img" : "DATA 01";
            accepts(check, good);
            for (const bad of [` ${good}`, `${good} `]) refuses(check, bad, trimmed);
        }
        for (const bad of ["\tvm1", "vm1\u00a0"]) refuses(isXmlText, bad, trimmed);
        refuses(isSerial, " DATA", /write "DATA"/);
        refuses(isAbsolutePath, "/images/d.img ", /write "\/images\/d\.img"/);
        accepts(isXmlText, "br 0");
        accepts(isText, " stays for fields that never reach libvirt ");
    });
});

describe("validation: placementChecks", () => {
    const good = (): Record<string, unknown> => ({
        domain: "vm1",
        connection: { host: "hv1", user: "root", port: 22, uri: "qemu:///system", privateKey: "k", password: "p",
            hostKey: "SHA256:" + "a".repeat(43), knownHostsPath: "/root/.ssh/known_hosts", insecureIgnoreHostKey: false,
            sudo: true, connectTimeout: 15 },
    });
    const propertiesOf = (inputs: Record<string, unknown>): string[] => placementChecks(inputs).failures.map((f) => f.property);

    it("passes a complete, valid placement", () => {
        assert.deepEqual(placementChecks(good()).failures, []);
        assert.deepEqual(placementChecks({ domain: "vm1", connection: { host: "hv1", user: "root" } }).failures, []);
    });

    it("requires domain, connection and host (user may come from the SSH config)", () => {
        assert.deepEqual(propertiesOf({}), ["domain", "connection", "connection.host"]);
        assert.deepEqual(propertiesOf({ domain: "vm1", connection: {} }), ["connection.host"]);
    });

    it("refuses a connection that is not an object", () => {
        const failures = placementChecks({ domain: "vm1", connection: "root@hv1" }).failures;
        assert.equal(failures[0].property, "connection");
        assert.match(failures[0].reason, /must be an object/);
    });

    it("refuses a domain with a line break", () => {
        assert.deepEqual(propertiesOf({ ...good(), domain: "vm1\nrm -rf /" }), ["domain"]);
    });

    it("refuses a domain or URI with white space at either end (libvirt would not find it as written)", () => {
        assert.deepEqual(propertiesOf({ ...good(), domain: "vm1 " }), ["domain"]);
        assert.deepEqual(propertiesOf({ ...good(), connection: { host: "h", uri: " qemu:///system" } }), ["connection.uri"]);
    });

    it("bounds the port to 1..65535 whole numbers", () => {
        const withPort = (port: unknown): string[] => propertiesOf({ ...good(), connection: { host: "h", user: "u", port } });
        assert.deepEqual(withPort(1), []);
        assert.deepEqual(withPort(65535), []);
        assert.deepEqual(withPort(0), ["connection.port"]);
        assert.deepEqual(withPort(65536), ["connection.port"]);
        assert.deepEqual(withPort(22.5), ["connection.port"]);
        assert.deepEqual(withPort("22"), ["connection.port"]);
        const reason = placementChecks({ domain: "d", connection: { host: "h", user: "u", port: 70000 } }).failures[0].reason;
        assert.match(reason, /at most 65535/);
    });

    it("checks each optional connection field", () => {
        const bad: Record<string, unknown> = {
            uri: "", privateKey: 1, privateKeyPassphrase: 1, password: 1, hostKey: "MD5:xx", knownHostsPath: "",
            insecureIgnoreHostKey: "yes", sudo: 1, connectTimeout: 0,
        };
        for (const [key, value] of Object.entries(bad)) {
            const inputs = { domain: "vm1", connection: { host: "h", user: "u", [key]: value } };
            assert.deepEqual(propertiesOf(inputs), [`connection.${key}`], `connection.${key} = ${JSON.stringify(value)}`);
        }
    });

    it("skips unknown placement values", () => {
        assert.deepEqual(placementChecks({ domain: UNKNOWN_VALUE, connection: { host: UNKNOWN_VALUE, user: "u" } }).failures, []);
    });
});
