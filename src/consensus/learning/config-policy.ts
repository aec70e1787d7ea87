/**
 * The policy before a task has enough labels: weights from config (`weight`, else the
 * log-odds of `accuracy`, else equal), and a cascade that stops only by the exact rule
 * (vote.ts's `settled`: the leader's margin exceeds all the weight still to come, and
 * whether it reaches `min_agreement` can no longer change).
 */
import { type Ballot, group, settled } from "../vote"
import type { ModelRecord, Observed, Policy } from "./policy"

/** Candidates most trusted first (heavier weight; then the order given). */
export const byTrust = (candidates: ReadonlyArray<string>, weightOf: (m: string) => number): ReadonlyArray<string> =>
  candidates.map((m, i) => ({ m, i })).sort((a, b) => weightOf(b.m) - weightOf(a.m) || a.i - b.i).map(({ m }) => m)

/** Observed answers as ballots (group keys compared exactly), abstentions left out. */
const ballotsOf = (observed: Observed, weightOf: (m: string) => number): ReadonlyArray<Ballot> =>
  [...observed].flatMap(([model, key]) => (key === null ? [] : [{ id: model, answer: { kind: "choice" as const, key }, weight: weightOf(model) }]))

/**
 * The fewest next models (most trusted first) whose siding with the leader (or, before
 * any answer, agreeing among themselves) would settle the outcome exactly; all that are
 * left when none would; none once it is settled.
 */
export const exactNext = (
  candidates: ReadonlyArray<string>,
  observed: Observed,
  weightOf: (m: string) => number,
  minAgreement: number
): ReadonlyArray<string> => {
  const uncalled = byTrust(candidates, weightOf).filter((m) => !observed.has(m))
  if (uncalled.length === 0) return []
  const ballots = ballotsOf(observed, weightOf)
  let pending = uncalled.reduce((sum, m) => sum + weightOf(m), 0)
  // One vote agrees with nothing (the decision reports it as a single answer): two at least, as parallel's early stop asks.
  if (ballots.length >= 2 && settled(group(ballots), pending, minAgreement)) return []
  const leader = group(ballots)[0]?.key ?? "\u0000wave"
  const joined: Array<Ballot> = [...ballots]
  for (const model of uncalled) {
    pending -= weightOf(model)
    joined.push({ id: model, answer: { kind: "choice", key: leader }, weight: weightOf(model) })
    if (pending <= 0 || (joined.length >= 2 && settled(group(joined), pending, minAgreement))) return uncalled.slice(0, joined.length - ballots.length)
  }
  return uncalled
}

/** The config policy over these weights (models absent weigh what `fallback` says). */
export const configPolicy = (
  weights: ReadonlyMap<string, number>,
  fallback: (model: string) => number,
  minAgreement: number,
  records: ReadonlyArray<ModelRecord> = []
): Policy => {
  const weightOf = (m: string) => weights.get(m) ?? fallback(m)
  return {
    rule: "config",
    labels: 0,
    weights,
    records,
    weightOf,
    next: (candidates, observed) => exactNext(candidates, observed, weightOf, minAgreement)
  }
}
