/**
 * Content policies on a chat request (its messages' text: contents, text parts, tool-call
 * arguments) and on an answer. The first blocking finding ends the request; redactions
 * rewrite a copy of the request; routing policies narrow the models it may reach.
 *
 * Policies whose checks wait (an `llm` check) run as an Effect, every text of the request
 * at once; the synchronous path stays as it was for the policies that do not.
 */
import { Effect } from "effect"
import type { ChatCompletionRequest, Message } from "../protocol/chat-request"
import type { Finding } from "./check"
import { appliesTo, describeFindings, inspect, inspectAll, type Policy, redact } from "./policy"
import type { Violation } from "./stream"

export type InputVerdict =
  | { readonly _tag: "Blocked"; readonly violation: Violation }
  | {
    readonly _tag: "Allowed"
    /** The request to send: redacted where a policy said so, else the one given. */
    readonly request: ChatCompletionRequest
    /** Models a routing policy restricts the request to (undefined: any). */
    readonly routeTo: ReadonlyArray<string> | undefined
    /** Policies that changed or narrowed the request, for the response's headers and the log. */
    readonly applied: ReadonlyArray<string>
  }

/** A text through the policies: what it becomes, or the violation that stops it. */
export interface TextOutcome {
  readonly text: string
  readonly violation?: Violation
}

/** What one policy's findings make of the text: redacted, a violation, or the same (routing is read from `fired`). */
const actOn = (policy: Policy, text: string, findings: ReadonlyArray<Finding>, fired: Set<Policy>): TextOutcome => {
  if (findings.length === 0) return { text }
  fired.add(policy)
  if (policy.action === "block") return { text, violation: { policy: policy.name, found: describeFindings(findings) } }
  return { text: policy.action === "redact" ? redact(text, findings) : text }
}

const throughPolicies = (policies: ReadonlyArray<Policy>, text: string, fired: Set<Policy>): TextOutcome => {
  let outcome: TextOutcome = { text }
  for (const policy of policies) {
    outcome = actOn(policy, outcome.text, inspect(policy, outcome.text), fired)
    if (outcome.violation !== undefined) return outcome
  }
  return outcome
}

/** The same, waiting for the checks that wait; each policy sees the text as the ones before it left it. */
const throughPoliciesWaiting: (policies: ReadonlyArray<Policy>, text: string, fired: Set<Policy>) => Effect.Effect<TextOutcome> = Effect.fnUntraced(function*(
  policies: ReadonlyArray<Policy>,
  text: string,
  fired: Set<Policy>
) {
  let outcome: TextOutcome = { text }
  for (const policy of policies) {
    outcome = actOn(policy, outcome.text, yield* inspectAll(policy, outcome.text), fired)
    if (outcome.violation !== undefined) return outcome
  }
  return outcome
})

/** A message with each of its texts passed through `f` (the same object when nothing changed). */
const mapTexts = (message: Message, f: (text: string) => string): Message => {
  const content = (c: unknown): unknown =>
    typeof c === "string"
      ? f(c)
      : Array.isArray(c)
      ? c.map((part: { type?: string; text?: string }) => (part.type === "text" && typeof part.text === "string" ? { ...part, text: f(part.text) } : part))
      : c
  const withContent = { ...message, content: content(message.content) } as Message
  if (withContent.role !== "assistant" || withContent.tool_calls === undefined) return withContent
  return { ...withContent, tool_calls: withContent.tool_calls.map((call) => ({ ...call, function: { ...call.function, arguments: f(call.function.arguments) } })) }
}

/** The request through the input policies in force (the gateway's, its route's, its key's). */
export const applyInputPolicies = (policies: ReadonlyArray<Policy>, request: ChatCompletionRequest): InputVerdict => {
  const input = policies.filter((p) => appliesTo(p, "input"))
  if (input.length === 0) return { _tag: "Allowed", request, routeTo: undefined, applied: [] }
  const fired = new Set<Policy>()
  let violation: Violation | undefined
  const messages = request.messages.map((message) =>
    mapTexts(message, (text) => {
      if (violation !== undefined) return text
      const outcome = throughPolicies(input, text, fired)
      violation = outcome.violation
      return outcome.text
    })
  )
  return verdictOf(request, messages, fired, violation)
}

/** The request's verdict once its texts went through the policies (`fired`: those that found something). */
const verdictOf = (request: ChatCompletionRequest, messages: ReadonlyArray<Message>, fired: Set<Policy>, violation: Violation | undefined): InputVerdict => {
  if (violation !== undefined) return { _tag: "Blocked", violation }
  const [first, ...others] = [...fired].filter((p) => p.action === "route").map((p) => new Set(p.routeTo))
  // Several routing policies: the request may go only where all of them allow.
  const routeTo = first === undefined ? undefined : [...first].filter((m) => others.every((r) => r.has(m)))
  const redacted = [...fired].some((p) => p.action === "redact")
  return { _tag: "Allowed", request: redacted ? { ...request, messages: [...messages] } : request, routeTo, applied: [...fired].map((p) => p.name) }
}

/** How many texts of one request are checked at once by checks that wait (each may be a model call). */
const TEXTS_AT_ONCE = 8

/**
 * The most texts of one request that checks that wait read: each is a model call (a judge's,
 * paid for), so a request of thousands of messages must not make thousands of them. One
 * with more is refused (fail closed), never passed unread.
 */
export const MAX_WAITED_TEXTS = 64

/**
 * `applyInputPolicies` for policies with checks that wait: every text of the request goes
 * through the policies at once; the first violation in the request's order stops it.
 */
export const applyInputPoliciesWaiting = (policies: ReadonlyArray<Policy>, request: ChatCompletionRequest): Effect.Effect<InputVerdict> => {
  const input = policies.filter((p) => appliesTo(p, "input"))
  if (input.length === 0) return Effect.succeed({ _tag: "Allowed", request, routeTo: undefined, applied: [] })
  const texts: Array<string> = []
  for (const message of request.messages) {
    mapTexts(message, (text) => {
      texts.push(text)
      return text
    })
  }
  const judging = input.find((p) => p.waiting.length > 0)
  if (judging !== undefined && texts.length > MAX_WAITED_TEXTS) {
    const found = `${texts.length} texts, more than the ${MAX_WAITED_TEXTS} a policy that asks a model reads in one request`
    return Effect.succeed({ _tag: "Blocked", violation: { policy: judging.name, found } })
  }
  const fired = new Set<Policy>()
  return Effect.map(Effect.forEach(texts, (text) => throughPoliciesWaiting(input, text, fired), { concurrency: TEXTS_AT_ONCE }), (outcomes) => {
    let i = 0
    const messages = request.messages.map((message) => mapTexts(message, (text) => outcomes[i++]?.text ?? text))
    return verdictOf(request, messages, fired, outcomes.find((o) => o.violation !== undefined)?.violation)
  })
}

/** An answer's text through the output policies: redacted, or the violation that withholds it. */
export const applyOutputPolicies = (policies: ReadonlyArray<Policy>, text: string): TextOutcome => {
  const output = policies.filter((p) => appliesTo(p, "output"))
  return output.length === 0 ? { text } : throughPolicies(output, text, new Set())
}

/** `applyOutputPolicies` for policies with checks that wait. */
export const applyOutputPoliciesWaiting = (policies: ReadonlyArray<Policy>, text: string): Effect.Effect<TextOutcome> => {
  const output = policies.filter((p) => appliesTo(p, "output"))
  return output.length === 0 ? Effect.succeed({ text }) : throughPoliciesWaiting(output, text, new Set())
}
