/**
 * Simulated models: configurable latency, speed, price, failure rate and answers. They
 * make the demo fleet, and let routing and consensus be exercised without a provider.
 * A model with fixed `answers` says exactly those; one without works its answers out
 * from the prompt (./answer.ts). Either way the response is in OpenAI's shape: `n`
 * choices, tool calls (streamed as OpenAI streams them), usage.
 */
import { Effect, Stream } from "effect"
import type { Deployment, SimSpec } from "../../config/gateway-config"
import { contentText, maxOutputTokens, type ChatCompletionRequest, type ToolCall } from "../../protocol/chat-request"
import {
  type ChatCompletion,
  type ChatCompletionChunk,
  type Delta,
  type FinishReason,
  nowSeconds,
  usageOf
} from "../../protocol/chat-response"
import { newId } from "../../domain/ids"
import { firstTokenTimeout, totalTimeout } from "../http/transport"
import type { CallDeadline, MakeClient } from "../provider"
import { invalid } from "../translate"
import { UpstreamError } from "../upstream-error"
import { type Reply, simulatedReply } from "./answer"

/** About four characters a token, as for English text in common tokenizers. */
export const roughTokens = (text: string): number => Math.max(1, Math.ceil(text.length / 4))

const promptTokens = (request: ChatCompletionRequest): number =>
  request.messages.reduce((sum, message) => sum + roughTokens(contentText(message.content)) + 4, 0)

const DEFAULT_SIM: SimSpec = { latencyMs: 50, errorRate: 0, answers: undefined, mistakeRate: 0, style: "sentence", tokensPerSecond: 200 }

/** One choice, ready to send: text cut at max_tokens, or a tool call. */
type Choice =
  | { readonly kind: "text"; readonly text: string; readonly finish: FinishReason }
  | { readonly kind: "tool_call"; readonly call: ToolCall }

/** The text before the first stop sequence, which (as OpenAI does) is not sent. */
const beforeStop = (text: string, stop: ChatCompletionRequest["stop"]): string => {
  const sequences = stop === undefined || stop === null ? [] : typeof stop === "string" ? [stop] : stop
  const at = Math.min(...sequences.filter((s) => s !== "").map((s) => text.indexOf(s)).filter((i) => i >= 0))
  return Number.isFinite(at) ? text.slice(0, at) : text
}

const toChoice = (reply: Reply, request: ChatCompletionRequest): Choice => {
  if (reply.kind === "tool_call") {
    // call_…, as OpenAI names its tool calls.
    const id = newId("call").replace("call-", "call_")
    return { kind: "tool_call", call: { id, type: "function", function: { name: reply.name, arguments: reply.arguments } } }
  }
  const max = maxOutputTokens(request)
  const text = beforeStop(reply.content, request.stop)
  const cut = max !== undefined && roughTokens(text) > max
  return { kind: "text", text: cut ? text.slice(0, max * 4) : text, finish: cut ? "length" : "stop" }
}

const outputTokens = (choice: Choice): number =>
  choice.kind === "text" ? roughTokens(choice.text) : roughTokens(choice.call.function.name + choice.call.function.arguments)

/** What OpenAI answers 400 to: a tool_choice that names no tool of the request. */
const checkToolChoice = (request: ChatCompletionRequest): UpstreamError | undefined => {
  const choice = request.tool_choice
  const tools = request.tools ?? []
  if (choice === "required" && tools.length === 0) return invalid("tool_choice", "tool_choice \"required\" needs tools")
  if (typeof choice === "object" && !tools.some((t) => t.function.name === choice.function.name)) {
    return invalid("tool_choice", `tool_choice names "${choice.function.name}", which is not one of the request's tools`)
  }
  return undefined
}

/** One choice's deltas: the role first, then words (or pieces of the arguments), then the finish. */
const deltasOf = (choice: Choice): ReadonlyArray<readonly [Delta, FinishReason | null]> => {
  if (choice.kind === "text") {
    const words = choice.text.match(/\S+\s*|\s+/g) ?? []
    return [
      [{ role: "assistant", content: "" }, null],
      ...words.map((word) => [{ content: word }, null] as const),
      [{}, choice.finish]
    ]
  }
  const { call } = choice
  const pieces = call.function.arguments.match(/[\s\S]{1,16}/g) ?? []
  return [
    [{ role: "assistant", content: null, tool_calls: [{ index: 0, id: call.id, type: "function", function: { name: call.function.name, arguments: "" } }] }, null],
    ...pieces.map((piece) => [{ tool_calls: [{ index: 0, function: { arguments: piece } }] }, null] as const),
    [{}, "tool_calls"]
  ]
}

/** Rounds of one element per list, as OpenAI interleaves the `n` choices of a stream. */
const rounds = <A>(lists: ReadonlyArray<ReadonlyArray<A>>): Array<Array<A>> => {
  const out: Array<Array<A>> = []
  const longest = Math.max(0, ...lists.map((l) => l.length))
  for (let i = 0; i < longest; i++) out.push(lists.flatMap((list) => list.slice(i, i + 1)))
  return out
}

export const makeSimClient: MakeClient = (deployment: Deployment) => {
  const sim = deployment.sim ?? DEFAULT_SIM
  const persona = { id: deployment.id, style: sim.style, mistakeRate: sim.mistakeRate }

  const replyOf = (request: ChatCompletionRequest, index: number): Reply =>
    sim.answers === undefined
      ? simulatedReply(request, persona, index)
      : { kind: "text", content: sim.answers[Math.floor(Math.random() * sim.answers.length)] ?? "" }

  /** The reply's choices after the latency, or a simulated failure. */
  const attempt = (request: ChatCompletionRequest) =>
    Effect.sleep(sim.latencyMs).pipe(
      Effect.zipRight(Effect.suspend(() => {
        // Fixed answers ignore tools altogether, as they always have.
        const wrong = sim.answers === undefined ? checkToolChoice(request) : undefined
        if (wrong !== undefined) return Effect.fail(wrong)
        if (Math.random() < sim.errorRate) {
          return Effect.fail(new UpstreamError({ kind: "server", status: 500, message: `simulated failure of ${deployment.id}` }))
        }
        return Effect.succeed(Array.from({ length: request.n ?? 1 }, (_, i) => toChoice(replyOf(request, i), request)))
      }))
    )

  const usage = (request: ChatCompletionRequest, choices: ReadonlyArray<Choice>) =>
    usageOf(promptTokens(request), choices.reduce((sum, c) => sum + outputTokens(c), 0))

  const completionOf = (request: ChatCompletionRequest, choices: ReadonlyArray<Choice>): ChatCompletion => ({
    id: newId("chatcmpl-sim"),
    object: "chat.completion",
    created: nowSeconds(),
    model: deployment.upstreamModel,
    choices: choices.map((choice, index) => ({
      index,
      message: choice.kind === "text"
        ? { role: "assistant", content: choice.text, refusal: null }
        : { role: "assistant", content: null, refusal: null, tool_calls: [choice.call] },
      finish_reason: choice.kind === "text" ? choice.finish : "tool_calls",
      logprobs: null
    })),
    usage: usage(request, choices)
  })

  /** The stream's chunks, in rounds: one token of every choice a round. */
  const chunksOf = (request: ChatCompletionRequest, choices: ReadonlyArray<Choice>): Array<Array<ChatCompletionChunk>> => {
    const header = { id: newId("chatcmpl-sim"), object: "chat.completion.chunk" as const, created: nowSeconds(), model: deployment.upstreamModel }
    const perChoice = choices.map((choice, index) =>
      deltasOf(choice).map(([delta, finish]): ChatCompletionChunk => ({
        ...header,
        choices: [{ index, delta, finish_reason: finish, logprobs: null }]
      }))
    )
    const out = rounds(perChoice)
    // The first token comes at once with the role chunk: a client has text as soon as it has headers.
    const [role, first, ...rest] = out
    const joined = role !== undefined && first !== undefined && rest.length > 0 ? [[...role, ...first], ...rest] : out
    // Usage closes the last round (alone, were there no other chunk).
    const usageChunk: ChatCompletionChunk = { ...header, choices: [], usage: usage(request, choices) }
    return [...joined.slice(0, -1), [...(joined.at(-1) ?? []), usageChunk]]
  }

  return {
    complete: (request, deadline) =>
      attempt(request).pipe(
        Effect.map((choices) => completionOf(request, choices)),
        Effect.timeoutFail({ duration: deadline.ms, onTimeout: () => totalTimeout(deadline) })
      ),

    stream: (request, deadline) =>
      // The first chunk comes with the answer's latency: the first-token deadline bounds the attempt.
      Effect.flatMap(withinFirstToken(attempt(request), deadline), (choices) => {
        const gap = Math.round(1000 / sim.tokensPerSecond)
        return Stream.toPull(Stream.fromIterable(chunksOf(request, choices).entries()).pipe(
          Stream.mapEffect(([i, round]) => Effect.as(i === 0 ? Effect.void : Effect.sleep(gap), round)),
          Stream.flattenIterables,
          // Not a hot path: the simple form of the deadline is fine here.
          Stream.interruptWhen(Effect.zipRight(Effect.sleep(deadline.ms), Effect.fail(totalTimeout(deadline))))
        ))
      })
  }
}

const withinFirstToken = <A>(answered: Effect.Effect<A, UpstreamError>, deadline: CallDeadline): Effect.Effect<A, UpstreamError> => {
  const first = deadline.firstToken
  return first === undefined ? answered : Effect.timeoutFail(answered, { duration: first.ms, onTimeout: () => firstTokenTimeout(first) })
}
