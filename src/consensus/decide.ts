/**
 * The decision once the calls are over: the answer is always the heaviest group's under
 * the weights in force (ties: the group of the more reliable model); `reached` only says
 * whether that group cleared the rule (vote.ts's `reaches`). Abstentions cast no vote.
 * `strategy: "score"` alone picks by evaluator score instead.
 */
import type { ConsensusReport } from "./request"
import { type Ballot, decide, type Group, group, reaches } from "./vote"

export interface DecisionInput {
  /** The ballots cast: eligible answers that did not abstain. */
  readonly votes: ReadonlyArray<Ballot>
  /** Indices of every answer that passed the gates, abstentions included. */
  readonly eligible: ReadonlyArray<number>
  readonly ballotOf: (i: number) => Ballot
  readonly scoreOf: (i: number) => number
  readonly strategy: "vote" | "similarity" | "score" | undefined
  readonly minAgreement: number
  readonly modelOf: (i: number) => string
  /** Why the fan-out came down to one model (budget, key), when it did. */
  readonly singleReason: string | undefined
}

export interface DecisionResult {
  readonly answerIndex: number
  readonly reached: boolean
  readonly agreement: number
  readonly supporting: ReadonlyArray<string>
  readonly fallback: ConsensusReport["fallback"]
  readonly groups: ReadonlyArray<Group>
  /** How many ballots were counted. */
  readonly ballots: number
  /** Indices whose ballot counted. */
  readonly voted: ReadonlySet<number>
}

export const decideAnswer = (input: DecisionInput): DecisionResult => {
  const { eligible, minAgreement, modelOf, scoreOf, strategy } = input
  // When every answer abstained there is nothing else to go on: they vote after all.
  const ballots = input.votes.length > 0 ? input.votes : eligible.map(input.ballotOf)
  const voted = new Set(ballots.map((b) => Number(b.id)))
  const groups = group(ballots)
  const decision = decide(groups, minAgreement)
  const best = (indices: ReadonlyArray<number>) => indices.reduce((a, b) => (scoreOf(b) > scoreOf(a) ? b : a))
  const shareOf = (g: Group | undefined) => (g === undefined || decision.cast === 0 ? 0 : g.weight / decision.cast)
  const [first] = ballots
  // Heaviest first: with two ballots or more there is one.
  const [winner] = groups
  if (ballots.length < 2) {
    // One vote: nothing agreed with it, so there is no agreement to report.
    const answerIndex = first === undefined ? best(eligible) : Number(first.id)
    const reason = input.singleReason ??
      (eligible.length < 2 ? "only one model gave a usable answer" : "only one model gave an answer of the kind asked; the others abstained")
    return { answerIndex, reached: false, agreement: 0, supporting: [modelOf(answerIndex)], fallback: { reason, mode: "single", model: modelOf(answerIndex) }, groups, ballots: ballots.length, voted }
  }
  if (strategy !== "score" && winner !== undefined) {
    const members = winner.members.map(Number)
    return { answerIndex: best(members), reached: decision.reached, agreement: shareOf(winner), supporting: members.map(modelOf), fallback: null, groups, ballots: ballots.length, voted }
  }
  const answerIndex = best(eligible)
  const home = groups.find((g) => g.members.includes(String(answerIndex)))
  return {
    answerIndex,
    reached: home !== undefined && decision.cast > 0 && reaches(shareOf(home), minAgreement),
    agreement: shareOf(home),
    supporting: (home?.members ?? [String(answerIndex)]).map((i) => modelOf(Number(i))),
    fallback: null,
    groups,
    ballots: ballots.length,
    voted
  }
}
