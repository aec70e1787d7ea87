/**
 * What a consensus says of itself once decided: the report the client receives (the
 * answer, how it was reached, every candidate with its score, cost and why it abstained)
 * and the outcome kept for feedback and learning (each candidate's normalized answer and
 * the group it voted with). Costs are the ledger's: what each candidate's calls cost as
 * billed, cancelled calls (on an estimate) included.
 */
import { parseJsonAnswer } from "./json-answer"
import type { Usage } from "../protocol/chat-response"
import { usageOf } from "../protocol/chat-response"
import type { ChatCompletionRequest } from "../protocol/chat-request"
import { type AttemptRecord, type Meter } from "../billing/meter"
import { costMicros, formatUsd } from "../domain/money"
import type { DecisionResult } from "./decide"
import type { Policy } from "./learning/policy"
import type { Mode } from "./mode"
import type { ConsensusOutcome } from "./outcome"
import type { CandidateReport, ConsensusReport, ConsensusRequest } from "./request"
import { isAnswered, type Round } from "./round"
import { round1 } from "./fan-out"
import type { Waves } from "./waves"

/** An attempt's cost as the ledger bills it: the provider's usage, else an estimate (a cancelled call). */
const attemptMicros = (attempt: AttemptRecord): number =>
  attempt.deployment.price === undefined ? 0 : costMicros(attempt.deployment.price, attempt.tokens().usage)

export interface ReportInput {
  readonly id: string
  readonly task: string
  readonly round: Round
  readonly waves: Waves
  readonly mode: Mode
  readonly policy: Policy
  readonly strategy: ConsensusRequest["strategy"]
  readonly decision: DecisionResult
  readonly scoreOf: (i: number) => number
  readonly earlyStopped: boolean
  readonly jsonMode: boolean
  readonly skipped: ReadonlyArray<{ readonly model: string; readonly reason: string }>
  readonly requests: ReadonlyArray<ChatCompletionRequest>
  readonly meter: Meter | undefined
  readonly evaluatorErrors: ReadonlyMap<string, string>
  readonly startedAt: number
}

/** Each called candidate's cost (undefined for a model the cascade never called). */
const candidateCosts = ({ meter, requests, round, waves }: ReportInput): ReadonlyArray<number | undefined> =>
  round.models.map((_, i) => {
    if (!waves.launched.has(i)) return undefined
    // Without a meter, what its answer reported.
    if (meter === undefined) return round.arrivals[i]?.answerMicroUsd
    return meter.attempts.reduce((sum, a) => (a.request === requests[i] ? sum + attemptMicros(a) : sum), 0)
  })

const candidateReport = (input: ReportInput, i: number, cost: number | undefined): CandidateReport => {
  const a = input.round.ended(i)
  const abstained = input.round.abstentionOf(i, input.decision.voted)
  return {
    model: input.round.modelOf(i),
    status: a.status,
    ...(a.toolCalls === undefined ? a.content === undefined ? {} : { content: a.content } : { content: null, tool_calls: a.toolCalls }),
    scores: a.scores,
    ...(a.status === "ok" && !a.gated ? { score: input.scoreOf(i) } : {}),
    ...(a.latencyMs === undefined ? {} : { latency_ms: a.latencyMs }),
    ...(a.usage === undefined ? {} : { usage: a.usage }),
    ...(cost === undefined ? {} : { cost_usd: formatUsd(cost) }),
    ...(a.error === undefined ? {} : { error: a.error }),
    ...(abstained === undefined ? {} : { abstained }),
    ...(input.mode === "cascade" ? { wave: input.waves.waveOf(i) } : {})
  }
}

/** The outcome kept for feedback: each called candidate's normalized answer and the group it voted with. */
const outcomeOf = (input: ReportInput, called: ReadonlyArray<number>, costs: ReadonlyArray<number | undefined>): ConsensusOutcome => {
  const { decision, round } = input
  const groupOf = new Map<number, string>()
  for (const g of decision.groups) for (const m of g.members) if (decision.voted.has(Number(m))) groupOf.set(Number(m), g.key)
  return {
    id: input.id,
    task: input.task,
    answerGroup: groupOf.get(decision.answerIndex) ?? null,
    candidates: called.map((i) => {
      const a = round.ended(i)
      const answer = isAnswered(a) && !a.gated ? round.normalizedOf(a) : undefined
      return {
        model: round.modelOf(i),
        status: a.status,
        kind: answer?.kind ?? null,
        answer: answer?.key ?? null,
        group: groupOf.get(i) ?? null,
        latencyMs: a.latencyMs ?? null,
        costMicros: costs[i] ?? 0
      }
    })
  }
}

export const reportOf = (input: ReportInput): { readonly report: ConsensusReport; readonly outcome: ConsensusOutcome } => {
  const { decision, meter, round, waves } = input
  // Models a cascade never called are not candidates of this request.
  const called = round.models.flatMap((_, i) => (waves.launched.has(i) ? [i] : []))
  const costs = candidateCosts(input)
  const winner = round.answered(decision.answerIndex)
  const home = decision.groups.find((g) => g.members.includes(String(decision.answerIndex)))
  const parsed = input.jsonMode && winner.toolCalls === undefined ? parseJsonAnswer(winner.content) : undefined
  // Everything the request's calls cost, LLM judges' included: what the ledger records.
  const totalMicro = meter === undefined
    ? costs.reduce((sum: number, c) => sum + (c ?? 0), 0)
    : meter.attempts.reduce((sum, a) => sum + attemptMicros(a), 0)
  const usage = round.arrivals.reduce(
    (sum: Usage, a) => usageOf(sum.prompt_tokens + (a?.usage?.prompt_tokens ?? 0), sum.completion_tokens + (a?.usage?.completion_tokens ?? 0)),
    usageOf(0, 0)
  )
  const report: ConsensusReport = {
    id: input.id,
    object: "consensus" as const,
    answer: {
      content: winner.toolCalls === undefined ? winner.content : null,
      ...(winner.toolCalls === undefined ? {} : { tool_calls: winner.toolCalls }),
      ...(parsed?.ok === true ? { parsed: parsed.value } : {}),
      model: round.modelOf(decision.answerIndex)
    },
    consensus: {
      reached: decision.reached,
      strategy: input.strategy ?? (home?.kind === "text" ? "similarity" : "vote"),
      agreement: decision.ballots < 2 ? null : decision.agreement,
      supporting_models: decision.supporting,
      early_stopped: input.earlyStopped,
      mode: input.mode,
      task: input.task,
      rule: input.policy.rule,
      labels: input.policy.labels,
      waves: waves.report()
    },
    candidates: [
      ...called.map((i) => candidateReport(input, i, costs[i])),
      ...input.skipped.map((s): CandidateReport => ({ model: s.model, status: "skipped", scores: {}, error: `skipped: ${s.reason}` }))
    ],
    evaluator_errors: [...input.evaluatorErrors].map(([name, error]) => ({ name, error })),
    fallback: decision.fallback,
    usage,
    cost_usd: formatUsd(totalMicro),
    latency_ms: round1(performance.now() - input.startedAt)
  }
  return { report, outcome: outcomeOf(input, called, costs) }
}
