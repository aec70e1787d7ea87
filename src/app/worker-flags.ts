/**
 * Node flags the primary gives the workers it forks, beyond its own.
 *
 * A young generation of 8 MB a semi-space instead of V8's 16: a worker under load promotes
 * enough to run full collections, after which V8's memory reducer gives the heap back once
 * the load is over (2 workers, 40,000 requests at 64 connections: 117-121 MB a worker 25 s
 * after the load in 5 of 6 runs, against 198-231 MB kept with the default, none given
 * back), for ~3 % of throughput. An operator's own choice (in node's arguments or
 * NODE_OPTIONS) is kept.
 */
const DEFAULTS: ReadonlyArray<{ readonly flag: string; readonly unlessGiven: ReadonlyArray<string> }> = [
  // A minimum of the operator's own is a choice of size too (and may exceed 8).
  { flag: "--max-semi-space-size=8", unlessGiven: ["--max-semi-space-size", "--min-semi-space-size"] }
]

/** A flag's name as node reads it: dashes for underscores, without its value or the quotes NODE_OPTIONS allows. */
const nameOf = (flag: string): string => flag.replace(/["']/g, "").replace(/_/g, "-").split("=")[0] ?? ""

export const workerExecArgv = (own: ReadonlyArray<string>, nodeOptions: string | undefined): Array<string> => {
  const given = new Set([...own, ...(nodeOptions ?? "").split(/\s+/)].map(nameOf))
  return [...own, ...DEFAULTS.filter((d) => !d.unlessGiven.some((name) => given.has(name))).map((d) => d.flag)]
}
