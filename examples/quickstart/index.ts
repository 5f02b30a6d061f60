/**
 * The seed article ("kvm在线添加硬件": virsh setmem / setvcpus / attach-disk / attach-interface /
 * change-media on a running guest) as a Pulumi program. Everything host-specific comes from stack
 * config, so one program serves a dev and a prod stack; see README.md beside this file.
 */
import * as pulumi from "@pulumi/pulumi";
import { AttachedCdrom, AttachedDisk, AttachedInterface, DomainResources } from "pulumi-libvirt-live";

const cfg = new pulumi.Config();
const sshKey = cfg.getSecret("sshKey");        // pulumi config set --secret sshKey < key
const connection = {
    host: cfg.require("host"),                 // an address, or an alias of ~/.ssh/config
    port: cfg.getNumber("port"),               // default: the SSH config's Port, else 22
    user: cfg.get("user"),                     // default: the SSH config's User, else your user name
    // Without sshKey: the ssh-agent (SSH_AUTH_SOCK, or the socket in `agent`) and the config's IdentityFile.
    ...(sshKey !== undefined && { privateKey: sshKey }),
    agent: cfg.get("agent"),
    proxyJump: cfg.get("proxyJump"),           // "user@bastion:22,user@inner", as `ssh -J` takes it
    sshConfig: cfg.get("sshConfig"),           // default ~/.ssh/config
    hostKey: cfg.get("hostKey"),               // SHA256:… as `ssh-keygen -lf` prints it; else known_hosts
};
const domain = cfg.require("domain");

// virsh setmem --live --config / setvcpus --live --config: within the domain's maximums.
const size = new DomainResources("size", {
    connection, domain,
    memory: cfg.get("memory") ?? "512MiB",
    vcpus: cfg.getNumber("vcpus") ?? 2,
    rebootPolicy: cfg.get<"never" | "ifRequired" | "configOnly">("rebootPolicy") ?? "never",
});

// Each device is managed once its config key is set, so a stack can grow step by step.
const dataDisk = cfg.get("dataDisk");     // attach-device with <driver type='raw' cache='none' io='native'/>
const dataDiskSize = cfg.get("dataDiskSize");       // "20GiB": creates a missing image, grows it live (blockresize)
const dataDiskIops = cfg.getNumber("dataDiskIops"); // blkdeviotune --total-iops-sec, live
const disk = dataDisk === undefined ? undefined : new AttachedDisk("data", {
    connection, domain, source: dataDisk, target: "vdb", format: "raw", cache: "none", io: "native",
    size: dataDiskSize, iotune: dataDiskIops === undefined ? undefined : { totalIopsSec: dataDiskIops },
});

const bridge = cfg.get("bridge");         // attach-interface --type bridge --source br1 --model virtio
const nic = bridge === undefined ? undefined : new AttachedInterface("lan", {
    connection, domain, type: "bridge", source: bridge, model: "virtio",
});

const iso = cfg.get("iso");               // change-media hdc ISO: the guest's existing IDE drive
const cdrom = iso === undefined ? undefined : new AttachedCdrom("iso", { connection, domain, target: "hdc", source: iso });

export const memoryKiB = size.currentMemoryKiB;
export const vcpus = size.currentVcpus;
export const pendingReboot = size.pendingReboot;
// One object, so devices not yet configured are simply absent (no "undefined output" warnings).
export const devices = pulumi.output({ disk: disk?.target, diskCapacityBytes: disk?.capacityBytes, mac: nic?.mac, cdrom: cdrom?.source });
