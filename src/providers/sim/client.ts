/**
 * Simulated models: configurable latency, speed, price, error rate and answers. They
 * make the demo fleet, and let routing and consensus be exercised without a provider.
 */
import { Effect, Stream } from "effect"
import { contentText, type ChatCompletionRequest } from "../../protocol/chat-request"
import { usageOf } from "../../protocol/chat-response"
import { chunk, completion, newId, usageChunk } from "../build"
import type { MakeClient } from "../provider"
import { UpstreamError } from "../upstream-error"
import { totalTimeout } from "../http/transport"

/** About four characters a token, as for English text in common tokenizers. */
export const roughTokens = (text: string): number => Math.max(1, Math.ceil(text.length / 4))

const promptTokens = (request: ChatCompletionRequest): number =>
  request.messages.reduce((sum, message) => sum + roughTokens(contentText(message.content)) + 4, 0)

export const makeSimClient: MakeClient = (deployment) => {
  const sim = deployment.sim ?? { latencyMs: 50, errorRate: 0, answers: ["simulated"], tokensPerSecond: 200 }

  const attempt = Effect.suspend(() => {
    if (Math.random() < sim.errorRate) {
      return Effect.fail(
        new UpstreamError({ kind: "server", status: 500, message: `simulated failure of ${deployment.id}` })
      )
    }
    const answer = sim.answers[Math.floor(Math.random() * sim.answers.length)] ?? ""
    return Effect.succeed(answer)
  })

  const limit = (request: ChatCompletionRequest, answer: string) => {
    const max = request.max_completion_tokens ?? request.max_tokens ?? undefined
    const cut = max !== undefined && roughTokens(answer) > max
    return { text: cut ? answer.slice(0, max! * 4) : answer, finish: cut ? ("length" as const) : ("stop" as const) }
  }

  return {
    complete: (request) =>
      Effect.sleep(sim.latencyMs).pipe(
        Effect.zipRight(attempt),
        Effect.map((answer) => {
          const { finish, text } = limit(request, answer)
          return completion({
            id: newId("chatcmpl-sim"),
            model: deployment.upstreamModel,
            content: text,
            toolCalls: [],
            finishReason: finish,
            usage: usageOf(promptTokens(request), roughTokens(text))
          })
        }),
        Effect.timeoutFail({ duration: deployment.timeouts.totalMs, onTimeout: () => totalTimeout(deployment.timeouts.totalMs) })
      ),

    stream: (request) =>
      Stream.unwrap(
        Effect.sleep(sim.latencyMs).pipe(
          Effect.zipRight(attempt),
          Effect.map((answer) => {
            const { finish, text } = limit(request, answer)
            const header = { id: newId("chatcmpl-sim"), model: deployment.upstreamModel, created: Math.floor(Date.now() / 1000) }
            const words = text.match(/\S+\s*/g) ?? []
            const gap = Math.round(1000 / sim.tokensPerSecond)
            const usage = usageOf(promptTokens(request), roughTokens(text))
            return Stream.make(chunk(header, { role: "assistant", content: "" })).pipe(
              Stream.concat(
                Stream.fromIterable(words.entries()).pipe(
                  Stream.mapEffect(([i, word]) => Effect.as(i === 0 ? Effect.void : Effect.sleep(gap), chunk(header, { content: word })))
                )
              ),
              Stream.concat(Stream.make(chunk(header, {}, finish), usageChunk(header, usage))),
              // Not a hot path: the simple form of the deadline is fine here.
              Stream.interruptWhen(Effect.zipRight(Effect.sleep(deployment.timeouts.totalMs), Effect.fail(totalTimeout(deployment.timeouts.totalMs))))
            )
          })
        )
      )
  }
}
