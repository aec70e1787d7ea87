/**
 * Content policies on a chat request (its messages' text: contents, text parts, tool-call
 * arguments) and on an answer. The first blocking finding ends the request; redactions
 * rewrite a copy of the request; routing policies narrow the models it may reach.
 */
import type { ChatCompletionRequest, Message } from "../protocol/chat-request"
import { appliesTo, describeFindings, inspect, type Policy, redact } from "./policy"
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

/** A text through the input policies: what it becomes, or the violation that stops it. */
interface TextOutcome {
  text: string
  violation?: Violation
}

const throughPolicies = (policies: ReadonlyArray<Policy>, text: string, fired: Set<Policy>): TextOutcome => {
  let current = text
  for (const policy of policies) {
    const findings = inspect(policy, current)
    if (findings.length === 0) continue
    fired.add(policy)
    if (policy.action === "block") return { text: current, violation: { policy: policy.name, found: describeFindings(findings) } }
    if (policy.action === "redact") current = redact(current, findings)
  }
  return { text: current }
}

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
  if (violation !== undefined) return { _tag: "Blocked", violation }
  const routes = [...fired].filter((p) => p.action === "route").map((p) => new Set(p.routeTo))
  // Several routing policies: the request may go only where all of them allow.
  const routeTo = routes.length === 0 ? undefined : [...routes[0]!].filter((m) => routes.every((r) => r.has(m)))
  const redacted = [...fired].some((p) => p.action === "redact")
  return { _tag: "Allowed", request: redacted ? { ...request, messages } : request, routeTo, applied: [...fired].map((p) => p.name) }
}

/** An answer's text through the output policies: redacted, or the violation that withholds it. */
export const applyOutputPolicies = (policies: ReadonlyArray<Policy>, text: string): TextOutcome => {
  const output = policies.filter((p) => appliesTo(p, "output"))
  return output.length === 0 ? { text } : throughPolicies(output, text, new Set())
}
