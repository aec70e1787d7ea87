/**
 * The gateway's content policies on a chat request and its answer: a blocked request is
 * a 400 `content_policy_violation` naming the policy and what was found (never the text);
 * a redacted one goes upstream redacted; a routed one goes only to the models its policies
 * allow (to the first of them when it asked for another); an answer a blocking output
 * policy fires on is withheld, and a redacting one is redacted.
 *
 * Policies with checks that wait (an `llm` check, an async module) run as Effects; the
 * others keep the synchronous path, and a stream without them pays nothing more per chunk.
 */
import type { ConsensusReport } from "../consensus/request"
import { Effect, Fiber, Option } from "effect"
import { CurrentTicket, type Ticket } from "../billing/ticket"
import { applyInputPolicies, applyInputPoliciesWaiting, applyOutputPolicies, applyOutputPoliciesWaiting, type InputVerdict, type TextOutcome } from "../policy/request"
import { appliesTo, type Policy, policiesOf, waits } from "../policy/policy"
import { KeyPolicyMissing, type SpendStoreError, type Unauthorized } from "../billing/errors"
import { type Released, StreamScanner, type Violation } from "../policy/stream"
import type { ChatCompletionRequest } from "../protocol/chat-request"
import type { ChatCompletion, ChatCompletionChunk } from "../protocol/chat-response"
import { InvalidRequest } from "./errors"

export const POLICY_HEADER = "x-quorum-policies"

/**
 * Whether a request is admitted before its input policies: when one of them waits for a
 * model (an llm check's judge, whose call the key pays for), so that a key out of budget
 * or over its limits is refused before any judge is asked. Not when an input policy may
 * route the request elsewhere (admission is for the model that is called: then it comes
 * after, and a judge may run for a key that admission then refuses). A consensus model's
 * fan-out admits itself, whatever this says.
 */
export const admitsFirst = (policies: ReadonlyArray<Policy>): boolean => {
  const input = policies.filter((p) => appliesTo(p, "input"))
  return input.some((p) => p.waiting.length > 0) && !input.some((p) => p.action === "route")
}

/**
 * The policies a request for `model` is under, its caller's key's included: the key is
 * identified here (once a request; the Ticket keeps it), before any policy or routing
 * reads it. A key naming a policy the config lost is refused rather than served unchecked.
 */
export const requestPolicies = (
  all: ReadonlyArray<Policy>,
  model: string,
  ticket: Ticket
): Effect.Effect<ReadonlyArray<Policy>, KeyPolicyMissing | Unauthorized | SpendStoreError> =>
  Effect.flatMap(ticket.identify(), (key) => {
    const found = policiesOf(all, model, key?.policies ?? [])
    return found.missing === undefined || key === undefined
      ? Effect.succeed(found.policies)
      : Effect.fail(new KeyPolicyMissing({ policy: found.missing, keyId: key.id }))
  })

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

/** The input policies' verdict: synchronous unless a check waits. */
const inputVerdict = (policies: ReadonlyArray<Policy>, request: ChatCompletionRequest): Effect.Effect<InputVerdict> =>
  waits(policies) ? applyInputPoliciesWaiting(policies, request) : Effect.succeed(applyInputPolicies(policies, request))

/** A text through the output policies: synchronous unless a check waits. */
const outputOf = (policies: ReadonlyArray<Policy>, text: string): Effect.Effect<TextOutcome> =>
  waits(policies) ? applyOutputPoliciesWaiting(policies, text) : Effect.succeed(applyOutputPolicies(policies, text))

/** The request a verdict lets go (to the first model its routing policies allow, when it asked for another), or the violation. */
const allowedRequest = (verdict: InputVerdict): Effect.Effect<Checked, InvalidRequest> => {
  if (verdict._tag === "Blocked") return Effect.fail(violated(verdict.violation, "request"))
  const { routeTo, applied } = verdict
  if (routeTo === undefined || routeTo.includes(verdict.request.model)) return Effect.succeed({ request: verdict.request, applied })
  const [first] = routeTo
  if (first === undefined) {
    return Effect.fail(new InvalidRequest({ message: `Content policies ${applied.map((p) => `\`${p}\``).join(", ")} allow no model in common for this request.`, param: "model", code: "content_policy_violation" }))
  }
  return Effect.succeed({ request: { ...verdict.request, model: first }, applied })
}

/** The request as the input policies let it go, or the violation that stops it. */
export const checkRequest = (policies: ReadonlyArray<Policy>, request: ChatCompletionRequest): Effect.Effect<Checked, InvalidRequest> => {
  if (policies.length === 0) return Effect.succeed({ request, applied: [] })
  return waits(policies) ? Effect.flatMap(applyInputPoliciesWaiting(policies, request), allowedRequest) : allowedRequest(applyInputPolicies(policies, request))
}

/**
 * A consensus report as the output policies let it out: its answer redacted, or withheld
 * (the violation, a 400); each candidate's text redacted, or replaced by a note naming the
 * policy, since the report shows every model's answer, not only the chosen one.
 */
export const checkReport = (policies: ReadonlyArray<Policy>, report: ConsensusReport): Effect.Effect<ConsensusReport, InvalidRequest> => {
  if (!policies.some((p) => p.on !== "input")) return Effect.succeed(report)
  return reportThrough(policies, report)
}

/** The report's answer and candidates through the output policies. */
const reportThrough = Effect.fnUntraced(function*(policies: ReadonlyArray<Policy>, report: ConsensusReport) {
  const content = report.answer.content
  const answer = content === null ? { text: null } : yield* outputOf(policies, content)
  if ("violation" in answer && answer.violation !== undefined) return yield* violated(answer.violation, "answer")
  const candidates = yield* Effect.forEach(report.candidates, (c) =>
    c.content === undefined || c.content === null ? Effect.succeed(c) : Effect.map(outputOf(policies, c.content), (outcome) => ({
      ...c,
      content: outcome.violation === undefined ? outcome.text : `[withheld by content policy ${outcome.violation.policy}]`
    })), { concurrency: "unbounded" })
  return { ...report, answer: { ...report.answer, content: answer.text }, candidates }
})

/** The answer as the output policies let it out, or the violation that withholds it. */
export const checkAnswer = (policies: ReadonlyArray<Policy>, completion: ChatCompletion): Effect.Effect<ChatCompletion, InvalidRequest> => {
  if (policies.length === 0) return Effect.succeed(completion)
  return answerThrough(policies, completion)
}

const answerThrough = Effect.fnUntraced(function*(policies: ReadonlyArray<Policy>, completion: ChatCompletion) {
  const choices = []
  for (const choice of completion.choices) {
    const content = choice.message.content
    if (content === null) {
      choices.push(choice)
      continue
    }
    const outcome = yield* outputOf(policies, content)
    if (outcome.violation !== undefined) return yield* violated(outcome.violation, "answer")
    choices.push(outcome.text === content ? choice : { ...choice, message: { ...choice.message, content: outcome.text } })
  }
  return { ...completion, choices }
})

/**
 * The output policies on a stream, as chunks arrive: each choice's text goes through a
 * scanner that holds back what a finding could still span, so what reaches the client is
 * already redacted, and a blocking finding ends the stream with an error event before any
 * of it is sent. Held text is released with the choice's finishing chunk.
 *
 * With a check that waits among them, each choice's text is held whole and checked when
 * its finishing chunk arrives (see policy/stream.ts). The stream is read after the
 * request's handler returned, outside the scope where its ticket is current, so the ticket
 * is taken here, where the stream is made, and a judge's call is metered into it.
 */
export const scanChunks = (policies: ReadonlyArray<Policy>) => {
  const output = policies.filter((p) => p.on !== "input")
  const scanners = new Map<number, StreamScanner>()
  const scannerOf = (index: number) => {
    let scanner = scanners.get(index)
    if (scanner === undefined) scanners.set(index, (scanner = new StreamScanner(output)))
    return scanner
  }
  if (waits(output)) return holding(scannerOf, currentTicket())
  return (chunk: ChatCompletionChunk): Effect.Effect<ChatCompletionChunk, InvalidRequest> => {
    if (output.length === 0 || chunk.choices.length === 0) return Effect.succeed(chunk)
    const choices = []
    for (const choice of chunk.choices) {
      const scanner = scannerOf(choice.index)
      const content = choice.delta.content
      let text = typeof content === "string" ? scanner.push(content) : { text: "" }
      if (text.violation === undefined && choice.finish_reason !== null) text = joined(text, scanner.end())
      if (text.violation !== undefined) return Effect.fail(violated(text.violation, "answer"))
      choices.push(typeof content === "string" || text.text !== "" ? { ...choice, delta: { ...choice.delta, content: text.text } } : choice)
    }
    return Effect.succeed({ ...chunk, choices })
  }
}

const joined = (text: Released, rest: Released): Released => ({ text: text.text + rest.text, ...(rest.violation !== undefined ? { violation: rest.violation } : {}) })

/** The ticket of the request the current fiber works for (read synchronously, where a stream is made). */
const currentTicket = (): Ticket | undefined => Option.getOrUndefined(Option.flatMap(Fiber.getCurrentFiber(), (fiber) => Option.fromNullable(fiber.getFiberRef(CurrentTicket))))

const meteredInto = <A, E>(ticket: Ticket | undefined, effect: Effect.Effect<A, E>): Effect.Effect<A, E> => (ticket === undefined ? effect : Effect.locally(effect, CurrentTicket, ticket))

/**
 * Chunks when some check waits: each choice's text is held (sent as empty deltas) until
 * its finishing chunk, which carries the whole text once every check has read it, or
 * cuts the stream.
 */
const holding = (scannerOf: (index: number) => StreamScanner, ticket: Ticket | undefined) => (chunk: ChatCompletionChunk): Effect.Effect<ChatCompletionChunk, InvalidRequest> => {
  const choices = chunk.choices.map((choice) => {
    const content = choice.delta.content
    if (typeof content !== "string") return choice
    scannerOf(choice.index).push(content)
    return { ...choice, delta: { ...choice.delta, content: "" } }
  })
  if (choices.every((c) => c.finish_reason === null)) return Effect.succeed({ ...chunk, choices })
  return meteredInto(ticket, released(scannerOf, chunk, choices))
}

/** The chunk with each finished choice's held text, once every check has read it, or the violation that cuts the stream. */
const released = Effect.fnUntraced(function*(
  scannerOf: (index: number) => StreamScanner,
  chunk: ChatCompletionChunk,
  choices: ChatCompletionChunk["choices"]
) {
  const out = []
  for (const choice of choices) {
    if (choice.finish_reason === null) {
      out.push(choice)
      continue
    }
    const whole = yield* scannerOf(choice.index).endWaiting()
    if (whole.violation !== undefined) return yield* violated(whole.violation, "answer")
    out.push({ ...choice, delta: { ...choice.delta, content: whole.text } })
  }
  return { ...chunk, choices: out }
})

/** What the input policies read of a consensus request: its messages, or its prompt. */
interface ConsensusInput {
  readonly messages?: ChatCompletionRequest["messages"] | undefined
  readonly prompt?: string | undefined
}

/**
 * The input policies on a consensus request (its messages, or its prompt). A request a
 * routing policy fired on is refused rather than fanned out: the fan-out cannot yet be
 * held to the policy's models, and sending it anywhere else is what the policy forbids.
 */
export const checkConsensusRequest = <R extends ConsensusInput>(
  policies: ReadonlyArray<Policy>,
  request: R
): Effect.Effect<R, InvalidRequest> => {
  if (policies.length === 0) return Effect.succeed(request)
  const messages = request.messages ?? [{ role: "user" as const, content: request.prompt ?? "" }]
  return Effect.flatMap(inputVerdict(policies, { model: "consensus", messages }), (verdict) => consensusAllowed(request, messages, verdict))
}

/** The consensus request a verdict lets fan out, or why not. */
const consensusAllowed = <R extends ConsensusInput>(
  request: R,
  messages: ChatCompletionRequest["messages"],
  verdict: InputVerdict
): Effect.Effect<R, InvalidRequest> => {
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
