export * from "./rule-table";
export { DOMAIN_RESOURCES_RULES } from "./domain-resources-rules";
export { ATTACHED_DISK_RULES } from "./attached-disk-rules";
export { ATTACHED_INTERFACE_RULES } from "./attached-interface-rules";
export { ATTACHED_CDROM_RULES } from "./attached-cdrom-rules";
export { renderRuleTable } from "./rule-docs";
