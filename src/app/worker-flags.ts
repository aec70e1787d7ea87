/**
 * Node and V8 flags beyond the operator's: those the primary gives the workers it forks,
 * and those every serving process sets on itself at start.
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

const givenNames = (own: ReadonlyArray<string>, nodeOptions: string | undefined): Set<string> =>
  new Set([...own, ...(nodeOptions ?? "").split(/\s+/)].map(nameOf))

export const workerExecArgv = (own: ReadonlyArray<string>, nodeOptions: string | undefined): Array<string> => {
  const given = givenNames(own, nodeOptions)
  return [...own, ...DEFAULTS.filter((d) => !d.unlessGiven.some((name) => given.has(name))).map((d) => d.flag)]
}

/**
 * V8 flags every serving process sets on itself at start, with v8.setFlagsFromString: a
 * flag a later V8 no longer has is then reported on stderr and ignored, where on the
 * command line it would stop node. (V8's flags are not allowed in NODE_OPTIONS: only the
 * command line can choose otherwise.)
 *
 * No allocation-site pretenuring. Under load, a request's objects are often alive at a
 * scavenge, so V8 judges their allocation sites long-lived and allocates from them in the
 * old generation. Those old objects die with their request, but until a full collection
 * finds them dead the scavenger counts what they point to as alive: each request's young
 * state is kept and promoted in turn, which feeds more full collections. In a minimal
 * Effect program (one async fiber at a time) this promoted ~400 KB a scavenge, and nothing
 * without pretenuring; in a worker, ~90 % of what scavenges copied (BENCHMARKS.md, eighth
 * session). The operator's own choice, either way, is kept.
 */
const RUNTIME_DEFAULTS: ReadonlyArray<{ readonly flag: string; readonly unlessGiven: ReadonlyArray<string> }> = [
  { flag: "--no-allocation-site-pretenuring", unlessGiven: ["--allocation-site-pretenuring", "--no-allocation-site-pretenuring"] }
]

export const runtimeV8Flags = (own: ReadonlyArray<string>): Array<string> => {
  const given = givenNames(own, undefined)
  return RUNTIME_DEFAULTS.filter((d) => !d.unlessGiven.some((name) => given.has(name))).map((d) => d.flag)
}
