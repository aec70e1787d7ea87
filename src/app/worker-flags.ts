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
const DEFAULTS: ReadonlyArray<readonly [name: string, flag: string]> = [["--max-semi-space-size", "--max-semi-space-size=8"]]

/** Whether `name` is among the flags, as `--name=value` or `--name value`, with dashes or underscores. */
const sets = (flags: ReadonlyArray<string>, name: string): boolean => {
  const wanted = name.replace(/_/g, "-")
  return flags.some((flag) => flag.replace(/_/g, "-").split("=")[0] === wanted)
}

export const workerExecArgv = (own: ReadonlyArray<string>, nodeOptions: string | undefined): Array<string> => {
  const given = [...own, ...(nodeOptions ?? "").split(/\s+/).filter((flag) => flag !== "")]
  return [...own, ...DEFAULTS.filter(([name]) => !sets(given, name)).map(([, flag]) => flag)]
}
