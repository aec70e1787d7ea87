/**
 * Evaluators at work on one consensus: gates judge each answer alone as it arrives (so an
 * early stop counts only valid votes), scorers judge the answers together once the calls
 * are over. An evaluator is a plug-in, so its failure or a malformed result is recorded as
 * an evaluator error, never the request's failure.
 */
import { Effect, Either, FiberRef } from "effect"
import { compileSchema, parseJsonAnswer } from "./json-answer"
import type { ChatCompletionRequest, ResponseFormat } from "../protocol/chat-request"
import { CurrentTicket, ticketStorage } from "../billing/ticket"
import type { Candidate, Evaluator } from "./evaluator"
import type { Answered, Round } from "./round"

export interface ChosenEvaluator {
  readonly evaluator: Evaluator
  readonly weight: number
  readonly options: Record<string, unknown>
}

/**
 * Each candidate with its score, when the evaluator gave one number in [0, 1] per candidate.
 * A plug-in is untrusted code: whatever it returns is checked, never assumed to be an array.
 */
const scoresFor = (candidates: ReadonlyArray<Candidate>, scores: unknown): Either.Either<ReadonlyArray<readonly [Candidate, number]>, string> => {
  if (!Array.isArray(scores)) return Either.left(`returned ${scores === null ? "null" : typeof scores} instead of an array of scores`)
  const scored = candidates.flatMap((candidate, k) => {
    const score: unknown = scores[k]
    return typeof score === "number" && score >= 0 && score <= 1 ? [[candidate, score] as const] : []
  })
  return scores.length === candidates.length && scored.length === candidates.length
    ? Either.right(scored)
    : Either.left(`returned ${scores.length} scores for ${candidates.length} candidates, or scores outside [0, 1]`)
}

/** Runs an evaluator under a timeout; a failure is a value, never the request's failure. */
export const runEvaluator = (
  evaluator: Evaluator,
  candidates: ReadonlyArray<Candidate>,
  request: ChatCompletionRequest,
  options: Record<string, unknown>,
  timeoutMs: number
) =>
  Effect.flatMap(FiberRef.get(CurrentTicket), (meter) =>
    Effect.tryPromise({
      try: async (signal) => await ticketStorage.run(meter, () => evaluator.evaluate({ request, candidates, options, signal })),
      catch: (error) => (error instanceof Error ? error.message : String(error))
    })).pipe(
    Effect.timeoutFail({ duration: timeoutMs, onTimeout: () => `timed out after ${timeoutMs} ms` }),
    Effect.flatMap((scores) => scoresFor(candidates, scores)),
    Effect.either
  )

/** Why an answer is not valid JSON for the request's schema, for the error that says no answer was. */
export const schemaProblem = (content: string, format: ResponseFormat | undefined): string | undefined => {
  const parsed = parseJsonAnswer(content)
  if (!parsed.ok) return "not valid JSON"
  if (format?.type !== "json_schema" || format.json_schema.schema === undefined) return undefined
  const compiled = compileSchema(format.json_schema.schema)
  if (compiled._tag === "Left" || compiled.right(parsed.value)) return undefined
  const first = compiled.right.errors?.[0]
  return first === undefined ? undefined : `${first.instancePath === "" ? "the answer" : first.instancePath} ${first.message ?? "is invalid"}`
}

const candidateOf = (i: number, model: string, answer: Answered): Candidate => ({
  id: String(i),
  model,
  content: answer.content,
  ...(answer.toolCalls === undefined ? {} : { tool_calls: answer.toolCalls })
})

/** Runs the gates on one answer as it arrives, marking it gated (and why) when one scores it 0. */
export const applyGates = Effect.fnUntraced(function*(
  gates: ReadonlyArray<ChosenEvaluator>,
  input: { readonly index: number; readonly model: string; readonly answer: Answered; readonly request: ChatCompletionRequest; readonly format: ResponseFormat | undefined },
  timeoutMs: number,
  errors: Map<string, string>
) {
  const { answer, index, model, request } = input
  for (const gate of gates) {
    const result = yield* runEvaluator(gate.evaluator, [candidateOf(index, model, answer)], request, gate.options, timeoutMs)
    if (result._tag === "Left") {
      errors.set(gate.evaluator.name, result.left)
      continue
    }
    // One candidate, so one score.
    for (const [, score] of result.right) {
      answer.scores[gate.evaluator.name] = score
      if (score === 0) {
        answer.gated = true
        const problem = gate.evaluator.name === "json_schema" && answer.toolCalls === undefined ? schemaProblem(answer.content, input.format) : undefined
        answer.gateFailures.push(problem === undefined ? gate.evaluator.name : `${gate.evaluator.name} (${problem})`)
      }
    }
  }
})

/**
 * Runs the scorers on the eligible answers together, recording each one's scores on its
 * arrival, and gives the weighted mean score of an answer (0 when no scorer judged it).
 */
export const applyScorers = Effect.fnUntraced(function*(
  scorers: ReadonlyArray<ChosenEvaluator>,
  round: Round,
  eligible: ReadonlyArray<number>,
  request: ChatCompletionRequest,
  timeoutMs: number,
  errors: Map<string, string>
) {
  const candidates = eligible.map((i) => candidateOf(i, round.modelOf(i), round.answered(i)))
  for (const scorer of scorers) {
    const result = yield* runEvaluator(scorer.evaluator, candidates, request, scorer.options, timeoutMs)
    if (result._tag === "Left") errors.set(scorer.evaluator.name, result.left)
    else for (const [candidate, score] of result.right) round.answered(Number(candidate.id)).scores[scorer.evaluator.name] = score
  }
  return (i: number): number => {
    let total = 0
    let weights = 0
    for (const { evaluator, weight } of scorers) {
      const s = round.arrivals[i]?.scores[evaluator.name]
      if (s === undefined) continue
      total += s * weight
      weights += weight
    }
    return weights === 0 ? 0 : total / weights
  }
})
