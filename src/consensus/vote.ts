/**
 * Grouping equivalent answers, weighted voting, and the rule that lets a fan-out stop
 * early without changing its outcome.
 */
import type { Normalized } from "./normalize"
import { dice } from "./similarity"

export interface Ballot {
  readonly id: string
  readonly answer: Normalized
  readonly weight: number
}

export interface GroupingOptions {
  /** Numbers a and b agree when |a − b| ≤ max(absolute, relative · max(|a|, |b|)). */
  readonly absoluteTolerance: number
  readonly relativeTolerance: number
  /** Free-text answers agree at this Dice similarity (string-similarity's) or above. */
  readonly textSimilarity: number
}

export const DEFAULT_GROUPING: GroupingOptions = { absoluteTolerance: 1e-9, relativeTolerance: 1e-6, textSimilarity: 0.85 }

export interface Group {
  readonly kind: Normalized["kind"]
  /** The first member's normalized answer: what the group agrees on. */
  readonly key: string
  readonly members: ReadonlyArray<string>
  readonly weight: number
}

export const equivalent = (a: Normalized, b: Normalized, options: GroupingOptions): boolean => {
  if (a.kind !== b.kind) return false
  if (a.kind === "number" && b.kind === "number") {
    const scale = Math.max(Math.abs(a.value), Math.abs(b.value))
    return Math.abs(a.value - b.value) <= Math.max(options.absoluteTolerance, options.relativeTolerance * scale)
  }
  if (a.kind === "text") return dice(a.key, b.key) >= options.textSimilarity
  return a.key === b.key
}

/**
 * Ballots in groups of equivalent answers, heaviest first (ties: the group of the more
 * reliable model, its heaviest member; then the group whose first member came first). A
 * ballot joins the first group whose first member it matches.
 */
export const group = (ballots: ReadonlyArray<Ballot>, options: GroupingOptions = DEFAULT_GROUPING): ReadonlyArray<Group> => {
  const groups: Array<{ first: Normalized; members: Array<string>; weight: number; best: number; order: number }> = []
  for (const ballot of ballots) {
    const home = groups.find((g) => equivalent(g.first, ballot.answer, options))
    if (home === undefined) groups.push({ first: ballot.answer, members: [ballot.id], weight: ballot.weight, best: ballot.weight, order: groups.length })
    else {
      home.members.push(ballot.id)
      home.weight += ballot.weight
      home.best = Math.max(home.best, ballot.weight)
    }
  }
  return groups
    .sort((a, b) => b.weight - a.weight || b.best - a.best || a.order - b.order)
    .map((g) => ({ kind: g.first.kind, key: g.first.key, members: g.members, weight: g.weight }))
}

/** The member whose text is, on average, most similar to the others' (free text's answer). */
export const medoid = (texts: ReadonlyArray<string>): number => {
  let best = 0
  let bestScore = Number.NEGATIVE_INFINITY
  for (const [i, a] of texts.entries()) {
    let score = 0
    for (const [j, b] of texts.entries()) if (i !== j) score += dice(a, b)
    if (score > bestScore) {
      best = i
      bestScore = score
    }
  }
  return best
}

export interface Decision {
  readonly winner: Group | undefined
  /** The winner's share of the weight cast. */
  readonly agreement: number
  readonly reached: boolean
  /** All the weight cast. */
  readonly cast: number
}

/**
 * The consensus rule, the one place it is written: the winning group holds more than half
 * of the weight cast, and at least `minAgreement` of it. A 1–1 split is no consensus,
 * whatever `minAgreement` says; a `minAgreement` above one half raises the bar (1 asks
 * for unanimity). Monotone in `agreement`, which is what lets `settled` stop early.
 */
export const reaches = (agreement: number, minAgreement: number): boolean => agreement > 0.5 && agreement >= minAgreement

export const decide = (groups: ReadonlyArray<Group>, minAgreement: number): Decision => {
  const cast = groups.reduce((sum, g) => sum + g.weight, 0)
  const winner = groups[0]
  const agreement = winner === undefined || cast === 0 ? 0 : winner.weight / cast
  return { winner, agreement, reached: winner !== undefined && reaches(agreement, minAgreement), cast }
}

/**
 * Whether the votes still outstanding (`pending` weight) can no longer change the
 * outcome: neither which group wins nor whether it reaches consensus (`reaches`). The
 * lead must exceed what is pending (a tie could change the winner). Pending votes may
 * join the winner, go elsewhere, or never be cast (a model fails), so the winner's final
 * agreement lies between its share if all of them go elsewhere and its share if all of
 * them join it; since `reaches` is monotone, the outcome is settled when both ends agree.
 */
export const settled = (groups: ReadonlyArray<Group>, pending: number, minAgreement: number): boolean => {
  if (pending <= 0) return true
  const first = groups[0]
  if (first === undefined) return false
  const second = groups[1]?.weight ?? 0
  if (first.weight - second <= pending) return false
  const cast = groups.reduce((sum, g) => sum + g.weight, 0)
  const lowest = first.weight / (cast + pending)
  const highest = (first.weight + pending) / (cast + pending)
  return reaches(lowest, minAgreement) === reaches(highest, minAgreement)
}
