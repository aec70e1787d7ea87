/**
 * npm run bench:consensus-offline — the learned consensus policy on real models' recorded
 * answers (bench/data/consensus-real), without HTTP: quick to iterate on learn.ts.
 *
 * For each file and model set (the top 5 by calibration accuracy; the best model of each
 * of the 5 best vendors, vendor read from the model name, see vendorOf), the policy
 * learns from up to 300 labelled calibration items and answers the test items as a
 * cascade, replayed on the recorded answers (a null or missing answer is a call that
 * abstained). Reported next to it, on the same items: the best single model (chosen on
 * the calibration half), a plurality vote and a log-odds vote (weights from calibration
 * accuracies) of the whole set, and the learned weights' full vote.
 *
 * Protocols: "even→odd" is the issue's (calibrate and learn on even ids, report on odd);
 * "even→odd (last 300)" learns from another 300 even items; "odd→even" swaps the halves.
 * The last two check that what holds is the mechanism, not a fit to one split; so do two
 * sets of weaker models (ranks 11-15 and 21-25 by calibration accuracy), where models
 * disagree far more often, reported under the issue's protocol only.
 * Then the spread over SUBSETS random draws of the labelled items (seeded, so the same on
 * every run) under the issue's protocol: the worst and best of each figure.
 * Options (env): LABELS=300 SUBSETS=20 LEARN_OPTIONS='{"priorStrength": 10, …}' (LearnOptions)
 */
import { type LearnOptions, learnPolicy, replayCascade, weightedWinner } from "../src/consensus/learning/learn"
import {
  baselines,
  FILES,
  type FileName,
  isEven,
  type Item,
  labelled,
  loadItems,
  modelSets,
  ranked
} from "./consensus-real-data"

const LABELS = Number(process.env.LABELS ?? 300)
const SUBSETS = Number(process.env.SUBSETS ?? 20)
/** Learner options to try (JSON of LearnOptions), for iterating on learn.ts. */
const OPTIONS = JSON.parse(process.env.LEARN_OPTIONS ?? "{}") as LearnOptions

/** A seeded draw of n items (a Park-Miller generator: the same subsets on every run). */
const sample = <A>(items: ReadonlyArray<A>, n: number, seed: number): ReadonlyArray<A> => {
  let state = (seed * 48271) % 2147483647 || 1
  const next = () => (state = (state * 48271) % 2147483647) / 2147483647
  const keyed = items.map((item) => ({ item, key: next() }))
  return keyed.sort((a, b) => a.key - b.key).slice(0, n).map((k) => k.item)
}

interface Protocol {
  readonly name: string
  readonly calibration: (items: ReadonlyArray<Item>) => ReadonlyArray<Item>
  readonly training: (calibration: ReadonlyArray<Item>) => ReadonlyArray<Item>
  readonly test: (items: ReadonlyArray<Item>) => ReadonlyArray<Item>
}

const PROTOCOLS: ReadonlyArray<Protocol> = [
  { name: "even→odd", calibration: (i) => i.filter(isEven), training: (c) => c.slice(0, LABELS), test: (i) => i.filter((x) => !isEven(x)) },
  { name: "even→odd (last 300)", calibration: (i) => i.filter(isEven), training: (c) => c.slice(-LABELS), test: (i) => i.filter((x) => !isEven(x)) },
  { name: "odd→even", calibration: (i) => i.filter((x) => !isEven(x)), training: (c) => c.slice(0, LABELS), test: (i) => i.filter(isEven) }
]

const pct = (n: number, of: number): string => ((100 * n) / of).toFixed(1)

export interface Row {
  readonly file: FileName
  readonly set: string
  readonly protocol: string
  readonly models: ReadonlyArray<string>
  readonly n: number
  readonly best: string
  readonly single: number
  readonly plurality: number
  readonly logOdds: number
  readonly learnedFull: number
  readonly cascade: number
  readonly calls: number
  readonly sharpness: number
  readonly slack: number
  /** Paired: items the cascade got right and the other wrong, and the reverse. */
  readonly vsSingle: readonly [number, number]
  readonly vsLogOdds: readonly [number, number]
}

const evaluate = (file: FileName, items: ReadonlyArray<Item>, protocol: Protocol): ReadonlyArray<Row> => {
  const calibration = protocol.calibration(items)
  const training = protocol.training(calibration)
  const test = protocol.test(items)
  const order = ranked(calibration).map((r) => r.model)
  const weaker = [{ name: "ranks 11-15", models: order.slice(10, 15) }, { name: "ranks 21-25", models: order.slice(20, 25) }]
  return [...modelSets(calibration), ...(protocol.name === PROTOCOLS[0]!.name ? weaker : [])].map((set) => {
    const base = baselines(calibration, set.models)
    const prior = new Map(set.models.map((m) => [m, 1] as const))
    const policy = learnPolicy(training.map((item) => labelled(item, set.models)), prior, OPTIONS)
    let single = 0, plurality = 0, logOdds = 0, learnedFull = 0, cascade = 0, calls = 0
    const vsSingle: [number, number] = [0, 0]
    const vsLogOdds: [number, number] = [0, 0]
    for (const item of test) {
      const answers = labelled(item, set.models).answers
      const run = replayCascade(answers, set.models, policy.next, policy.weights)
      const ok = run.answer === item.truth
      const singleOk = base.bestAnswer(item) === item.truth
      const logOddsOk = base.logOdds(item) === item.truth
      single += singleOk ? 1 : 0
      plurality += base.plurality(item) === item.truth ? 1 : 0
      logOdds += logOddsOk ? 1 : 0
      learnedFull += weightedWinner(answers, policy.weights) === item.truth ? 1 : 0
      cascade += ok ? 1 : 0
      calls += run.calls
      if (ok !== singleOk) vsSingle[ok ? 0 : 1] += 1
      if (ok !== logOddsOk) vsLogOdds[ok ? 0 : 1] += 1
    }
    return {
      file, set: set.name, protocol: protocol.name, models: set.models, n: test.length, best: base.best,
      single, plurality, logOdds, learnedFull, cascade, calls: calls / test.length,
      sharpness: policy.sharpness, slack: policy.slack, vsSingle, vsLogOdds
    }
  })
}

const verdict = (r: Row): string => {
  const misses = [
    ...(r.cascade < r.single ? ["< best single"] : []),
    ...(r.cascade < r.logOdds ? ["< log-odds"] : []),
    ...(r.calls > 2.5 ? ["> 2.5 calls"] : [])
  ]
  return misses.length === 0 ? "holds" : misses.join(", ")
}

const main = () => {
  console.log(`# bench:consensus-offline  learned from up to ${LABELS} labelled items, answers replayed from the recorded ones\n`)
  const rows: Array<Row> = []
  for (const file of FILES) {
    const items = loadItems(file)
    for (const protocol of PROTOCOLS) rows.push(...evaluate(file, items, protocol))
  }
  for (const file of FILES) {
    for (const r of rows.filter((x) => x.file === file && x.protocol === PROTOCOLS[0]!.name)) {
      console.log(`${file} ${r.set}: ${r.models.join(", ")} (best: ${r.best})`)
    }
  }
  console.log("")
  console.log("| file | set | protocol | n | best single | plurality | log-odds | learned, full vote | learned, cascade | calls/item | vs single (+/−) | vs log-odds (+/−) | sharpness / slack | target |")
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
  for (const r of rows) {
    console.log(
      `| ${r.file} | ${r.set} | ${r.protocol} | ${r.n} | ${pct(r.single, r.n)} | ${pct(r.plurality, r.n)} | ${pct(r.logOdds, r.n)} | ${pct(r.learnedFull, r.n)} | **${pct(r.cascade, r.n)}** | ${r.calls.toFixed(2)} | +${r.vsSingle[0]}/−${r.vsSingle[1]} | +${r.vsLogOdds[0]}/−${r.vsLogOdds[1]} | ${r.sharpness} / ${r.slack} | ${verdict(r)} |`
    )
  }
}

/** Under the issue's protocol, learning from SUBSETS random draws of LABELS even items. */
const spread = (file: FileName, items: ReadonlyArray<Item>): ReadonlyArray<string> =>
  modelSets(items.filter(isEven)).map((set) => {
    const rows = Array.from({ length: SUBSETS }, (_, seed) =>
      evaluate(file, items, { ...PROTOCOLS[0]!, name: `random ${seed}`, training: (c) => sample(c, LABELS, seed + 1) })
        .find((r) => r.set === set.name)!
    )
    const net = (pair: readonly [number, number]) => pair[0] - pair[1]
    const range = (values: ReadonlyArray<number>, f: (x: number) => string) => `${f(Math.min(...values))} … ${f(Math.max(...values))}`
    const holds = rows.filter((r) => verdict(r) === "holds").length
    return `| ${file} | ${set.name} | ${range(rows.map((r) => (100 * r.cascade) / r.n), (x) => x.toFixed(1))} | ${range(rows.map((r) => net(r.vsSingle)), (x) => `${x >= 0 ? "+" : ""}${x}`)} | ${range(rows.map((r) => net(r.vsLogOdds)), (x) => `${x >= 0 ? "+" : ""}${x}`)} | ${range(rows.map((r) => r.calls), (x) => x.toFixed(2))} | ${holds} of ${rows.length} |`
  })

main()
console.log(`\nLearning from ${SUBSETS} random draws of ${LABELS} even-id items (seeded), reporting on the odd ones:\n`)
console.log("| file | set | learned, cascade (%) | net vs best single (items) | net vs log-odds (items) | calls/item | target holds |")
console.log("|---|---|---|---|---|---|---|")
for (const file of FILES) for (const line of spread(file, loadItems(file))) console.log(line)
