/**
 * The gateway's content policies on a chat request and its answer: a blocked request is
 * a 400 `content_policy_violation` naming the policy and what was found (never the text);
 * a redacted one goes upstream redacted; a routed one goes only to the models its policies
 * allow (to the first of them when it asked for another); an answer a blocking output
 * policy fires on is withheld, and a redacting one is redacted.
 */
import type { ConsensusReport } from "../consensus/request"
import { Effect } from "effect"
import { applyInputPolicies, applyOutputPolicies } from "../policy/request"
import type { Policy } from "../policy/policy"
import { StreamScanner, type Violation } from "../policy/stream"
import type { ChatCompletionRequest } from "../protocol/chat-request"
import type { ChatCompletion, ChatCompletionChunk } from "../protocol/chat-response"
import { InvalidRequest } from "./errors"

export const POLICY_HEADER = "x-quorum-policies"

const violated = (v: Violation, what: "request" | "answer") =>
  new InvalidRequest({
    message: what === "request"
      ? `The request was blocked by content policy \`${v.policy}\`: it contains ${v.found}.`
      : `The answer was withheld by content policy \`${v.policy}\`: it contained ${v.found}.`,
    param: what === "request" ? "messages" : null,
    code: "content_policy_violation"
  })

export interface Checked {
  readonly request: ChatCompletionRequest
  /** Policies that changed or redirected the request, for the response's header. */
  readonly applied: ReadonlyArray<string>
}

/** The request as the input policies let it go, or the violation that stops it. */
export const checkRequest = (policies: ReadonlyArray<Policy>, request: ChatCompletionRequest): Effect.Effect<Checked, InvalidRequest> => {
  if (policies.length === 0) return Effect.succeed({ request, applied: [] })
  const verdict = applyInputPolicies(policies, request)
  if (verdict._tag === "Blocked") return Effect.fail(violated(verdict.violation, "request"))
  const { routeTo, applied } = verdict
  if (routeTo === undefined || routeTo.includes(verdict.request.model)) return Effect.succeed({ request: verdict.request, applied })
  if (routeTo.length === 0) {
    return Effect.fail(new InvalidRequest({ message: `Content policies ${applied.map((p) => `\`${p}\``).join(", ")} allow no model in common for this request.`, param: "model", code: "content_policy_violation" }))
  }
  return Effect.succeed({ request: { ...verdict.request, model: routeTo[0]! }, applied })
}

/**
 * A consensus report as the output policies let it out: its answer redacted, or withheld
 * (the violation, a 400); each candidate's text redacted, or replaced by a note naming the
 * policy, since the report shows every model's answer, not only the chosen one.
 */
export const checkReport = (policies: ReadonlyArray<Policy>, report: ConsensusReport): Effect.Effect<ConsensusReport, InvalidRequest> => {
  if (!policies.some((p) => p.on !== "input")) return Effect.succeed(report)
  const answer = report.answer.content === null ? { text: null } : applyOutputPolicies(policies, report.answer.content)
  if ("violation" in answer && answer.violation !== undefined) return Effect.fail(violated(answer.violation, "answer"))
  const candidates = report.candidates.map((c) => {
    if (c.content === undefined || c.content === null) return c
    const outcome = applyOutputPolicies(policies, c.content)
    return { ...c, content: outcome.violation === undefined ? outcome.text : `[withheld by content policy ${outcome.violation.policy}]` }
  })
  return Effect.succeed({ ...report, answer: { ...report.answer, content: answer.text }, candidates })
}

/** The answer as the output policies let it out, or the violation that withholds it. */
export const checkAnswer = (policies: ReadonlyArray<Policy>, completion: ChatCompletion): Effect.Effect<ChatCompletion, InvalidRequest> => {
  if (policies.length === 0) return Effect.succeed(completion)
  const choices = []
  for (const choice of completion.choices) {
    const content = choice.message.content
    if (content === null) {
      choices.push(choice)
      continue
    }
    const outcome = applyOutputPolicies(policies, content)
    if (outcome.violation !== undefined) return Effect.fail(violated(outcome.violation, "answer"))
    choices.push(outcome.text === content ? choice : { ...choice, message: { ...choice.message, content: outcome.text } })
  }
  return Effect.succeed({ ...completion, choices })
}

/**
 * The output policies on a stream, as chunks arrive: each choice's text goes through a
 * scanner that holds back what a finding could still span, so what reaches the client is
 * already redacted, and a blocking finding ends the stream with an error event before any
 * of it is sent. Held text is released with the choice's finishing chunk.
 */
export const scanChunks = (policies: ReadonlyArray<Policy>) => {
  const output = policies.filter((p) => p.on !== "input")
  const scanners = new Map<number, StreamScanner>()
  const scannerOf = (index: number) => {
    let scanner = scanners.get(index)
    if (scanner === undefined) scanners.set(index, (scanner = new StreamScanner(output)))
    return scanner
  }
  return (chunk: ChatCompletionChunk): Effect.Effect<ChatCompletionChunk, InvalidRequest> => {
    if (output.length === 0 || chunk.choices.length === 0) return Effect.succeed(chunk)
    const choices = []
    for (const choice of chunk.choices) {
      const scanner = scannerOf(choice.index)
      const content = choice.delta.content
      let text = typeof content === "string" ? scanner.push(content) : { text: "" }
      if (text.violation === undefined && choice.finish_reason !== null) {
        const rest = scanner.end()
        text = { text: text.text + rest.text, ...(rest.violation !== undefined ? { violation: rest.violation } : {}) }
      }
      if (text.violation !== undefined) return Effect.fail(violated(text.violation, "answer"))
      choices.push(typeof content === "string" || text.text !== "" ? { ...choice, delta: { ...choice.delta, content: text.text } } : choice)
    }
    return Effect.succeed({ ...chunk, choices })
  }
}

/**
 * The input policies on a consensus request (its messages, or its prompt). A request a
 * routing policy fired on is refused rather than fanned out: the fan-out cannot yet be
 * held to the policy's models, and sending it anywhere else is what the policy forbids.
 */
export const checkConsensusRequest = <R extends { readonly messages?: ChatCompletionRequest["messages"] | undefined; readonly prompt?: string | undefined }>(
  policies: ReadonlyArray<Policy>,
  request: R
): Effect.Effect<R, InvalidRequest> => {
  if (policies.length === 0) return Effect.succeed(request)
  const messages = request.messages ?? [{ role: "user" as const, content: request.prompt ?? "" }]
  const verdict = applyInputPolicies(policies, { model: "consensus", messages })
  if (verdict._tag === "Blocked") return Effect.fail(violated(verdict.violation, "request"))
  if (verdict.routeTo !== undefined) {
    return Effect.fail(new InvalidRequest({
      message: `Content policies ${verdict.applied.map((p) => `\`${p}\``).join(", ")} allow this request only to ${verdict.routeTo.join(", ") || "no model"}; a consensus fans out to others, so it is refused.`,
      param: "messages",
      code: "content_policy_violation"
    }))
  }
  if (verdict.request.messages === messages) return Effect.succeed(request)
  const checked = verdict.request.messages
  if (request.messages !== undefined) return Effect.succeed({ ...request, messages: checked })
  const first = checked[0]
  return Effect.succeed({ ...request, prompt: first !== undefined && typeof first.content === "string" ? first.content : request.prompt })
}
