/**
 * Learning a consensus policy from labelled outcomes: the vote weights, and how far a
 * cascade may go before it stops calling models.
 *
 * Why not per-model log-odds alone: they are the optimal weights only when models err
 * independently, and real models do not (two wrong models pick the same wrong answer a
 * third of the time on maths and multiple choice), so a block of weaker models outvotes
 * a clearly better one. The labelled history shows how correlated the errors are: the
 * learner picks, by cross-validation, how sharply the weights favour the more reliable
 * models, from plain log-odds (independent errors) to one model outweighing all the
 * others together (errors so correlated that voting only adds noise). One knob, chosen
 * on held-out folds, and only as sharp as the labels clearly say (a sharper weighting
 * must beat a gentler one by a standard error): a few labels do not overfit, and on
 * models that are close the vote stays a vote.
 *
 * The cascade calls the most reliable models first and stops once the votes still to
 * come are unlikely to change the answer. "Unlikely" is learned too: when every model
 * that answered agrees, the exact rule (the leader's margin exceeds all the weight still
 * to come) is relaxed by a factor, the smallest under which, on the labelled history,
 * the cascade is as accurate as waiting for every vote (within a standard error). A split
 * is settled only exactly. bench:consensus-offline measures all this on real models'
 * answers, over random draws of the labelled items too.
 *
 * Pure: no clock, no IO, no randomness (folds are taken in order).
 */
import type { LabelledVote, ModelRecord, Observed, Policy } from "./policy"

export interface LearnOptions {
  /** How many labels a model's prior weight is worth (see shrunkLogOdds). */
  readonly priorStrength?: number
  /** Cross-validation folds for the sharpness of the weights. */
  readonly folds?: number
  /** Candidate sharpness exponents; 1 is plain log-odds. */
  readonly sharpness?: ReadonlyArray<number>
  /** Candidate relaxations of the exact stopping rule, 1 being exact. */
  readonly slack?: ReadonlyArray<number>
  /**
   * The share of labelled items that the cascade may get wrong where waiting for every
   * vote gets them right: what stopping early may cost, at most (default 1 %).
   */
  readonly maxLost?: number
  /**
   * How many standard errors of held-out accuracy a sharper weighting must gain over a
   * gentler one to be preferred (default 1: the one-standard-error rule).
   */
  readonly sharpnessTolerance?: number
  /** How many standard errors of accuracy on the history the cascade may lose against the full vote (default 1). */
  readonly slackTolerance?: number
}

const DEFAULTS = {
  priorStrength: 10,
  folds: 5,
  sharpness: [1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64],
  slack: [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1],
  maxLost: 0.01,
  sharpnessTolerance: 1,
  slackTolerance: 1
} as const

const PROBABILITY_CLAMP = 1e-4

const clamp = (x: number, lo: number, hi: number): number => Math.min(Math.max(x, lo), hi)
const logit = (p: number): number => {
  const q = clamp(p, PROBABILITY_CLAMP, 1 - PROBABILITY_CLAMP)
  return Math.log(q / (1 - q))
}

/** What the history says of each model: how often it was labelled, answered, was right. */
export const modelRecords = (history: ReadonlyArray<LabelledVote>): ReadonlyArray<ModelRecord> => {
  const tally = new Map<string, { labelled: number; answered: number; correct: number }>()
  for (const item of history) {
    for (const [model, answer] of item.answers) {
      const t = tally.get(model) ?? { labelled: 0, answered: 0, correct: 0 }
      t.labelled += 1
      if (answer !== null) {
        t.answered += 1
        if (item.truth !== null && answer === item.truth) t.correct += 1
      }
      tally.set(model, t)
    }
  }
  return [...tally.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([model, t]) => ({ model, ...t }))
}

/**
 * Each model's log-odds of being right when it answers, shrunk toward its prior weight
 * (read as log-odds) by `strength` pseudo-labels: (n · empirical + strength · prior) /
 * (n + strength), the empirical one with half a label each way so that a perfect record
 * stays finite. With no labels the prior stands; with many the labels do.
 */
export const shrunkLogOdds = (
  records: ReadonlyArray<ModelRecord>,
  prior: ReadonlyMap<string, number>,
  strength: number
): ReadonlyMap<string, number> => {
  const out = new Map<string, number>()
  for (const [model, weight] of prior) out.set(model, Math.max(0, weight))
  for (const r of records) {
    const empirical = logit((r.correct + 0.5) / (r.answered + 1))
    const w0 = Math.max(0, prior.get(r.model) ?? 1)
    out.set(r.model, Math.max(0, (r.answered * empirical + strength * w0) / (r.answered + strength)))
  }
  return out
}

/**
 * Weights at a given sharpness: the most reliable model keeps its log-odds, the others
 * shrink by their log-odds ratio to it raised to `sharpness` (1: plain log-odds; large:
 * the leader outweighs everyone else together).
 */
export const sharpen = (logOdds: ReadonlyMap<string, number>, sharpness: number): ReadonlyMap<string, number> => {
  const top = Math.max(0, ...logOdds.values())
  const out = new Map<string, number>()
  for (const [model, lo] of logOdds) out.set(model, top === 0 ? 0 : top * Math.pow(lo / top, sharpness))
  return out
}

/**
 * The weight of a model the labels never saw (added to the fleet after learning): its prior,
 * no more than the most reliable model's, sharpened like the others. It votes and is called
 * in its place by that prior, and exploration brings the labels that will place it.
 */
export const newcomerWeight = (weights: ReadonlyMap<string, number>, sharpness: number, prior: number): number => {
  const top = Math.max(0, ...weights.values())
  return top === 0 ? Math.max(0, prior) : top * Math.pow(Math.min(Math.max(0, prior), top) / top, sharpness)
}

/** The weights with every candidate in: a model they lack weighs `newcomer(model)`. */
const including = (weights: ReadonlyMap<string, number>, candidates: ReadonlyArray<string>, newcomer?: (model: string) => number): ReadonlyMap<string, number> => {
  if (newcomer === undefined || candidates.every((m) => weights.has(m))) return weights
  const out = new Map(weights)
  for (const m of candidates) if (!out.has(m)) out.set(m, newcomer(m))
  return out
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** Models most reliable first (heaviest weight; names break ties, so the order is stable). */
export const reliabilityOrder = (models: Iterable<string>, weights: ReadonlyMap<string, number>): ReadonlyArray<string> =>
  [...models].sort((a, b) => (weights.get(b) ?? 0) - (weights.get(a) ?? 0) || byName(a, b))

interface Tally {
  readonly key: string
  weight: number
  /** The heaviest member's weight: ties between groups go to the more reliable model. */
  best: number
  bestName: string
  members: number
}

/** Groups by key, heaviest first; ties go to the group whose most reliable member is heavier. */
const tallies = (observed: Observed, weights: ReadonlyMap<string, number>): ReadonlyArray<Tally> => {
  const groups = new Map<string, Tally>()
  for (const [model, key] of observed) {
    if (key === null) continue
    const w = weights.get(model) ?? 0
    const g = groups.get(key)
    if (g === undefined) groups.set(key, { key, weight: w, best: w, bestName: model, members: 1 })
    else {
      g.weight += w
      g.members += 1
      if (w > g.best || (w === g.best && byName(model, g.bestName) < 0)) {
        g.best = w
        g.bestName = model
      }
    }
  }
  return [...groups.values()].sort(
    (a, b) => b.weight - a.weight || b.best - a.best || byName(a.bestName, b.bestName)
  )
}

/** The weighted vote's answer (a group key), or null when every model abstained. */
export const weightedWinner = (observed: Observed, weights: ReadonlyMap<string, number>): string | null =>
  tallies(observed, weights)[0]?.key ?? null

/**
 * Whether the votes still to come can no longer change the leader (its margin over the
 * runner-up exceeds all the weight pending: exact), or are unlikely to: every model that
 * answered agrees, two of them at least, and their weight exceeds `slack` times the
 * weight pending. Any dissent keeps the outcome open until the exact rule settles it (a
 * split is where the later votes matter); a lone answer settles only exactly (a model the
 * weights make decisive), as one model's word is what consensus is there to check. An
 * abstention casts no vote: the next model is called in its place. No answer yet is
 * never settled.
 */
const isSettled = (groups: ReadonlyArray<Tally>, pending: number, slack: number): boolean => {
  const first = groups[0]
  if (first === undefined) return false
  if (pending <= 0) return true
  const margin = first.weight - (groups[1]?.weight ?? 0)
  return margin > pending || (groups.length === 1 && first.members >= 2 && margin > slack * pending)
}

/**
 * The cascade step: the fewest next models (most reliable first) that could settle the
 * answer if they all sided with the current leader, or, before any answer, agreed among
 * themselves; all the rest when no such wave exists; none once settled.
 */
export const nextWave = (
  candidates: ReadonlyArray<string>,
  observed: Observed,
  known: ReadonlyMap<string, number>,
  slack: number,
  newcomer?: (model: string) => number
): ReadonlyArray<string> => {
  const weights = including(known, candidates, newcomer)
  const order = reliabilityOrder(new Set(candidates), weights)
  const uncalled = order.filter((m) => !observed.has(m))
  const weightOf = (m: string) => weights.get(m) ?? 0
  let pending = uncalled.reduce((sum, m) => sum + weightOf(m), 0)
  const groups = tallies(observed, weights)
  // The slack was learned on cascades that hear the most reliable models first. Answers heard
  // out of that order (a hedge's, while a more reliable call still runs) settle only exactly.
  const heard = order.filter((m) => observed.has(m)).length
  const relax = order.slice(0, heard).every((m) => observed.has(m)) ? slack : 1
  if (isSettled(groups, pending, relax) || uncalled.length === 0) return []
  const first = groups[0]
  const joinedLeader = (joined: ReadonlyArray<string>): Tally => ({
    key: first?.key ?? "",
    weight: (first?.weight ?? 0) + joined.reduce((sum, m) => sum + weightOf(m), 0),
    best: first?.best ?? 0,
    bestName: first?.bestName ?? "",
    members: (first?.members ?? 0) + joined.length
  })
  for (const [k, model] of uncalled.entries()) {
    pending -= weightOf(model)
    const wave = uncalled.slice(0, k + 1)
    const leader = joinedLeader(wave)
    const hypothetical = groups.length <= 1 ? [leader] : [leader, ...groups.slice(1)]
    if (isSettled(hypothetical, pending, relax)) return wave
  }
  return uncalled
}

/** Replays the cascade on one labelled item's recorded answers; the answer and the calls it took. */
export const replayCascade = (
  answers: ReadonlyMap<string, string | null>,
  candidates: ReadonlyArray<string>,
  next: (candidates: ReadonlyArray<string>, observed: Observed) => ReadonlyArray<string>,
  weights: ReadonlyMap<string, number>
): { readonly answer: string | null; readonly calls: number } => {
  const observed = new Map<string, string | null>()
  for (;;) {
    const wave = next(candidates, observed).filter((m) => !observed.has(m))
    if (wave.length === 0) break
    for (const m of wave) observed.set(m, answers.get(m) ?? null)
  }
  return { answer: weightedWinner(observed, weights), calls: observed.size }
}

/**
 * Whether answers `a` are no worse than answers `b` on the same items, within noise: the
 * items `b` gets right and `a` wrong exceed the reverse by at most one standard error of
 * that difference (the square root of the items they split on, McNemar's).
 */
const noWorse = (a: ReadonlyArray<boolean>, b: ReadonlyArray<boolean>, tolerance: number): boolean => {
  let aOnly = 0
  let bOnly = 0
  for (const [i, ok] of a.entries()) {
    if (ok && !b[i]) aOnly += 1
    if (!ok && b[i]) bOnly += 1
  }
  return bOnly - aOnly <= tolerance * Math.sqrt(aOnly + bOnly)
}

/**
 * Cross-validation: for each sharpness, whether the vote under weights learned on the
 * other folds is right on each held-out item. Folds are taken in order (deterministic).
 */
const heldOutVotes = (
  history: ReadonlyArray<LabelledVote>,
  prior: ReadonlyMap<string, number>,
  grid: ReadonlyArray<number>,
  folds: number,
  strength: number
): ReadonlyArray<ReadonlyArray<boolean>> => {
  const k = Math.max(2, Math.min(folds, history.length))
  const right = grid.map((sharpness) => ({ sharpness, votes: new Array<boolean>(history.length).fill(false) }))
  for (let f = 0; f < k; f++) {
    const logOdds = shrunkLogOdds(modelRecords(history.filter((_, i) => i % k !== f)), prior, strength)
    for (const { sharpness, votes } of right) {
      const weights = sharpen(logOdds, sharpness)
      for (const [i, item] of history.entries()) {
        if (i % k === f) votes[i] = item.truth !== null && weightedWinner(item.answers, weights) === item.truth
      }
    }
  }
  return right.map(({ votes }) => votes)
}

/**
 * The sharpness to use: the one that votes best on held-out folds, unless a smaller one
 * (closer to plain log-odds) is no worse within one standard error; so the weights leave
 * log-odds only as far as the labels clearly say.
 */
const crossValidatedSharpness = (
  history: ReadonlyArray<LabelledVote>,
  prior: ReadonlyMap<string, number>,
  grid: ReadonlyArray<number>,
  folds: number,
  strength: number,
  tolerance: number
): number => {
  const sorted = [...grid].sort((a, b) => a - b)
  if (history.length < 2 || sorted.length === 0) return sorted[0] ?? 1
  const right = heldOutVotes(history, prior, sorted, folds, strength)
  const count = (r: ReadonlyArray<boolean>) => r.filter(Boolean).length
  // The first that votes best; `right` has one entry per sharpness, and there is one at least.
  const best = right.reduce((b, r) => (count(r) > count(b) ? r : b))
  const chosen = right.findIndex((r) => noWorse(r, best, tolerance))
  return sorted[chosen] ?? 1
}

/**
 * The smallest slack under which the cascade, replayed on the history, is as accurate as
 * the full vote under the same weights (within one standard error), and loses at most `maxLost` of the items the full
 * vote gets right (it may win others: a full vote is not always better); slack 1, the
 * exact rule, always qualifies.
 */
const learnedSlack = (
  history: ReadonlyArray<LabelledVote>,
  weights: ReadonlyMap<string, number>,
  grid: ReadonlyArray<number>,
  maxLost: number,
  tolerance: number
): number => {
  const full = history.map((item) => weightedWinner(item.answers, weights))
  const fullRight = history.map((item, i) => item.truth !== null && full[i] === item.truth)
  for (const slack of [...grid].sort((a, b) => a - b)) {
    const next = (c: ReadonlyArray<string>, o: Observed) => nextWave(c, o, weights, slack)
    const right = history.map((item) => item.truth !== null && replayCascade(item.answers, [...item.answers.keys()], next, weights).answer === item.truth)
    const lost = right.filter((ok, i) => !ok && fullRight[i]).length
    if (noWorse(right, fullRight, tolerance) && lost <= maxLost * history.length) return slack
  }
  return 1
}

/** A policy learned from labelled history (rule "learned"); see the top of this file. */
export const learnPolicy = (
  history: ReadonlyArray<LabelledVote>,
  prior: ReadonlyMap<string, number>,
  options: LearnOptions = {}
): Policy & { readonly sharpness: number; readonly slack: number } => {
  const strength = options.priorStrength ?? DEFAULTS.priorStrength
  const records = modelRecords(history)
  const sharpness = crossValidatedSharpness(history, prior, options.sharpness ?? DEFAULTS.sharpness, options.folds ?? DEFAULTS.folds, strength, options.sharpnessTolerance ?? DEFAULTS.sharpnessTolerance)
  const weights = sharpen(shrunkLogOdds(records, prior, strength), sharpness)
  const slack = history.length === 0 ? 1 : learnedSlack(history, weights, options.slack ?? DEFAULTS.slack, options.maxLost ?? DEFAULTS.maxLost, options.slackTolerance ?? DEFAULTS.slackTolerance)
  const newcomer = (model: string) => newcomerWeight(weights, sharpness, prior.get(model) ?? 1)
  return {
    rule: "learned",
    labels: history.length,
    weights,
    records,
    sharpness,
    slack,
    weightOf: (model) => weights.get(model) ?? newcomer(model),
    next: (candidates, observed) => nextWave(candidates, observed, weights, slack, newcomer)
  }
}
