/**
 * What an evaluator is: a named function that scores every candidate answer of a
 * consensus request from 0 to 1, seeing the request and all candidates. Plain
 * TypeScript (sync or async) so that users can write one without knowing Effect; the
 * engine runs it under a timeout and reports, rather than propagates, its failures.
 */
import { Schema } from "effect"
import type { ChatCompletionRequest, ToolCall } from "../protocol/chat-request"

export interface Candidate {
  readonly id: string
  /** The model that wrote it. */
  readonly model: string
  /** The answer's text; for tool calls, the calls as canonical JSON (`[{"arguments":…,"name":…}]`). */
  readonly content: string
  /** Set when the model answered with tool calls instead of text. */
  readonly tool_calls?: ReadonlyArray<ToolCall>
}

export interface EvaluationInput {
  readonly request: ChatCompletionRequest
  readonly candidates: ReadonlyArray<Candidate>
  /** The request's `options` for this evaluator (`evaluators: [{name, options}]`). */
  readonly options: Readonly<Record<string, unknown>>
  /** Aborted when the evaluator's time is up: stop any work (a model call) then. */
  readonly signal?: AbortSignal
}

export interface Evaluator {
  /** Unique; how requests name it. */
  readonly name: string
  readonly description: string
  /** A gate excludes every candidate it scores 0 (an invalid answer is not a vote). */
  readonly gate?: boolean
  /** One score in [0, 1] per candidate, in the candidates' order. */
  readonly evaluate: (input: EvaluationInput) => ReadonlyArray<number> | Promise<ReadonlyArray<number>>
}

/** What a module in evaluators/ must export (as `default` or as `evaluator`). */
export const EvaluatorShape = Schema.Struct({
  name: Schema.String.pipe(Schema.pattern(/^[a-z][a-z0-9_]*$/, { message: () => "expected a name of lowercase letters, digits and _" })),
  description: Schema.String,
  gate: Schema.optional(Schema.Boolean),
  evaluate: Schema.declare((u): u is Evaluator["evaluate"] => typeof u === "function", { identifier: "function" })
})
