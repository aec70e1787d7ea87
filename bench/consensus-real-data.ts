/**
 * The recorded answers of real models (bench/data/consensus-real, see its README) as the
 * consensus benchmarks use them: loading, grouping answers as the benchmark defines
 * equality, the two model sets, and the offline baselines (best single model, plurality
 * and log-odds votes). Shared by bench:consensus-offline and bench:consensus-real.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import type { LabelledVote } from "../src/consensus/learning/policy"
import { reliabilityWeight } from "../src/domain/weights"

export const DATA_DIR = join(import.meta.dirname, "data", "consensus-real")
export const FILES = ["gsm8k", "cruxeval-o"] as const
export type FileName = (typeof FILES)[number]

export interface Item {
  readonly id: string
  readonly index: number
  readonly question: string
  /** The truth as recorded, and its group key. */
  readonly truthText: string
  readonly truth: string
  /** Model → recorded answer text (null: no parseable answer); absent: no record. */
  readonly raw: ReadonlyMap<string, string | null>
  /** Model → group key of its answer, null when it had none or no record. */
  readonly keys: ReadonlyMap<string, string | null>
}

/** GSM8K answers are equal when numerically equal (to 1e-6); CRUXEval's when the strings are. */
export const keyOf = (file: FileName, answer: string): string => {
  if (file !== "gsm8k") return answer
  const value = Number(answer.replace(/,/g, ""))
  return Number.isFinite(value) ? String(Math.round(value * 1e6) / 1e6) : answer
}

interface RawLine {
  readonly id: string
  readonly question: string
  readonly truth: string
  readonly answers: Record<string, string | null>
}

export const loadItems = (file: FileName): ReadonlyArray<Item> =>
  readFileSync(join(DATA_DIR, `${file}.jsonl`), "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const row = JSON.parse(line) as RawLine
      const index = Number(row.id.slice(row.id.lastIndexOf("-") + 1))
      const raw = new Map(Object.entries(row.answers))
      const keys = new Map([...raw].map(([m, a]) => [m, a === null ? null : keyOf(file, a)] as const))
      return { id: row.id, index, question: row.question, truthText: row.truth, truth: keyOf(file, row.truth), raw, keys }
    })

export const isEven = (item: Item): boolean => item.index % 2 === 0

/** Right on this item: answered, and in the truth's group. Absent or null is not right. */
export const right = (item: Item, model: string): boolean => item.keys.get(model) === item.truth

export const accuracy = (items: ReadonlyArray<Item>, model: string): number =>
  items.length === 0 ? 0 : items.filter((item) => right(item, model)).length / items.length

export const allModels = (items: ReadonlyArray<Item>): ReadonlyArray<string> => [...new Set(items.flatMap((i) => [...i.raw.keys()]))].sort()

/** Models by calibration accuracy (best first; names break ties). */
export const ranked = (items: ReadonlyArray<Item>): ReadonlyArray<{ model: string; accuracy: number }> =>
  allModels(items)
    .map((model) => ({ model, accuracy: accuracy(items, model) }))
    .sort((a, b) => b.accuracy - a.accuracy || (a.model < b.model ? -1 : 1))

/**
 * The vendor behind a model, from its name: the family prefix says who trained it (the
 * `@provider` suffix only says who served it: Llama served by Together is Meta's).
 */
export const vendorOf = (model: string): string => {
  const name = model.toLowerCase()
  const rules: ReadonlyArray<readonly [RegExp, string]> = [
    [/^(gpt|o1|chatgpt)/, "openai"],
    [/^claude/, "anthropic"],
    [/^(gemini|gemma)/, "google"],
    [/^(meta-)?llama/, "meta"],
    [/^(mistral|mixtral)/, "mistral"],
    [/^qwen/, "alibaba"],
    [/^deepseek/, "deepseek"],
    [/^yi/, "01.ai"],
    [/^command/, "cohere"],
    [/^reka/, "reka"],
    [/^phi/, "microsoft"],
    [/^athene/, "nexusflow"],
    [/^grok/, "xai"]
  ]
  return rules.find(([re]) => re.test(name))?.[1] ?? name
}

export interface ModelSet {
  readonly name: string
  readonly models: ReadonlyArray<string>
}

/** The top 5 by calibration accuracy, and the best model of each of the 5 best vendors. */
export const modelSets = (calibration: ReadonlyArray<Item>): ReadonlyArray<ModelSet> => {
  const order = ranked(calibration)
  const vendors = new Map<string, string>()
  for (const { model } of order) if (!vendors.has(vendorOf(model))) vendors.set(vendorOf(model), model)
  return [
    { name: "top-5", models: order.slice(0, 5).map((r) => r.model) },
    { name: "5-vendors", models: [...vendors.values()].slice(0, 5) }
  ]
}

/** An item as the learner sees it, restricted to a model set. */
export const labelled = (item: Item, models: ReadonlyArray<string>): LabelledVote => {
  const answers = new Map(models.map((m) => [m, item.keys.get(m) ?? null] as const))
  const truth = [...answers.values()].includes(item.truth) ? item.truth : null
  return { answers, truth }
}

/**
 * A weighted vote over the recorded answers (nulls abstain); ties go to the group of the
 * model that comes first in `order` (the more reliable one).
 */
export const vote = (item: Item, order: ReadonlyArray<string>, weight: (model: string) => number): string | null => {
  const groups = new Map<string, { weight: number; first: number }>()
  for (const [rank, model] of order.entries()) {
    const key = item.keys.get(model) ?? null
    if (key === null) continue
    const g = groups.get(key) ?? { weight: 0, first: rank }
    g.weight += weight(model)
    groups.set(key, g)
  }
  let best: { key: string; weight: number; first: number } | undefined
  for (const [key, g] of groups) {
    if (best === undefined || g.weight > best.weight || (g.weight === best.weight && g.first < best.first)) best = { key, ...g }
  }
  return best?.key ?? null
}

export interface Baselines {
  /** The best single model (by calibration accuracy) and its answers. */
  readonly best: string
  readonly bestAnswer: (item: Item) => string | null
  readonly plurality: (item: Item) => string | null
  readonly logOdds: (item: Item) => string | null
}

/** The offline baselines, calibrated on `calibration`, for a model set. */
export const baselines = (calibration: ReadonlyArray<Item>, models: ReadonlyArray<string>): Baselines => {
  const acc = new Map(models.map((m) => [m, accuracy(calibration, m)] as const))
  const order = [...models].sort((a, b) => (acc.get(b) ?? 0) - (acc.get(a) ?? 0) || (a < b ? -1 : 1))
  const best = order[0] ?? ""
  return {
    best,
    bestAnswer: (item) => item.keys.get(best) ?? null,
    plurality: (item) => vote(item, order, () => 1),
    logOdds: (item) => vote(item, order, (m) => reliabilityWeight(acc.get(m) ?? 0))
  }
}
