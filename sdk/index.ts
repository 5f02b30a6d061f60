/** What users import: the four resources, their Args, and memory-size helpers. */
export { DomainResources, DomainResourcesArgs } from "./domain-resources";
export { AttachedDisk, AttachedDiskArgs } from "./attached-disk";
export { AttachedInterface, AttachedInterfaceArgs } from "./attached-interface";
export { AttachedCdrom, AttachedCdromArgs } from "./attached-cdrom";
export type { ConnectionInputs as ConnectionArgs, CpuTune, MemoryTune, DomainTuning, RebootPolicy, DiskBus, DiskCache, DiskFormat, InterfaceType } from "../provider/contract";
export { formatKiB, parseMemoryKiB, MemorySize } from "../provider/units";
