/**
 * Host CPU lists as Linux (`/sys/devices/system/cpu/online`) and libvirt (`cpuset='0-3,6'`) write
 * them: numbers and ranges, comma-separated. Compared in one canonical form, so "0,1" and "0-1" agree.
 */

/** libvirt's CPU maps hold CPUs 0 to 16383 (VIR_DOMAIN_CPUMASK_LEN); a bigger number is refused before any range is walked. */
export const MAX_CPUS = 16384;

/** The CPUs a list names, sorted; throws a RangeError that says what is wrong with it. */
export function parseCpuList(text: string): number[] {
    const cpus = new Set<number>();
    for (const part of text.split(",")) {
        // Spaces and tabs only: a newline is no part of a CPU list.
        const match = /^[ \t]*(\d+)[ \t]*(?:-[ \t]*(\d+)[ \t]*)?$/.exec(part);
        if (!match) throw new RangeError(`${JSON.stringify(text)} is not a CPU list: write host CPU numbers and ranges, e.g. "0-3,6"`);
        const [from, to] = [Number(match[1]), Number(match[2] ?? match[1])];
        if (to >= MAX_CPUS) throw new RangeError(`${JSON.stringify(text)}: CPU ${to} is beyond libvirt's CPU numbers 0–${MAX_CPUS - 1}`);
        if (to < from) throw new RangeError(`${JSON.stringify(text)}: the range ${from}-${to} runs backwards`);
        for (let cpu = from; cpu <= to; cpu++) cpus.add(cpu);
    }
    return [...cpus].sort((a, b) => a - b);
}

/** The shortest list of ranges naming exactly these CPUs ("0-2,5"). */
export function formatCpuList(cpus: readonly number[]): string {
    const sorted = [...new Set(cpus)].sort((a, b) => a - b);
    const ranges: string[] = [];
    for (let i = 0; i < sorted.length;) {
        let j = i;
        while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
        ranges.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
        i = j + 1;
    }
    return ranges.join(",");
}

/** A list in its canonical form; throws as parseCpuList does. */
export function canonicalCpuList(text: string): string {
    return formatCpuList(parseCpuList(text));
}
