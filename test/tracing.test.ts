/**
 * Traces on their own: Effect spans exported by the tracing layer to a local OTLP
 * receiver, with their parents and the GenAI attributes, prompts only when asked for.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { annotateSpan, requestAttributes, responseAttributes, TelemetrySettings, tracingLayer } from "../src/telemetry/tracing"
import { startOtlpReceiver } from "./fakes/otlp-receiver"
import { startGateway } from "./support/gateway"

const settings = (fields: typeof TelemetrySettings.Encoded) => Schema.decodeUnknownSync(TelemetrySettings)(fields)

let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>
beforeAll(async () => {
  receiver = await startOtlpReceiver()
})
afterAll(() => receiver?.close())

const request = { model: "gpt-4o", messages: [{ role: "user" as const, content: "secret prompt" }], max_tokens: 50, temperature: 0 }
const completion = {
  id: "chatcmpl-1",
  model: "gpt-4o-2024-08-06",
  choices: [{ index: 0, message: { role: "assistant" as const, content: "secret answer", refusal: null }, finish_reason: "stop" as const }],
  usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 }
}

/** A request span with two upstream attempts under it, as the gateway makes them. */
const traced = (captureContent: boolean) =>
  Effect.gen(function*() {
    for (const attempt of [1, 2]) {
      yield* annotateSpan({ ...requestAttributes("openai", request, captureContent), ...responseAttributes(completion, captureContent), "quorum.attempt": attempt }).pipe(
        Effect.withSpan(`chat ${request.model}`, { kind: "client" })
      )
    }
  }).pipe(Effect.withSpan("POST /v1/chat/completions", { kind: "server" }))

describe("traces", () => {
  it("are off without an endpoint", () => {
    expect(tracingLayer(settings({}), "0.1.0")).toBe(Layer.empty)
  })

  it("export spans with their parents and the GenAI attributes, without prompt text by default", async () => {
    const before = receiver.spans.length
    await Effect.runPromise(traced(false).pipe(Effect.provide(tracingLayer(settings({ otlp_endpoint: receiver.url, service_name: "quorum-test" }), "0.1.0"))))
    // The layer's end shut the SDK down, which flushes the batch.
    await receiver.received(before + 3)
    const spans = receiver.spans.slice(before)
    const root = spans.find((s) => s.name === "POST /v1/chat/completions")!
    const attempts = spans.filter((s) => s.name === "chat gpt-4o")
    expect(attempts).toHaveLength(2)
    for (const a of attempts) {
      expect(a.parentSpanId).toBe(root.spanId)
      expect(a.traceId).toBe(root.traceId)
      expect(a.service).toBe("quorum-test")
      expect(a.attributes).toMatchObject({
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.request.max_tokens": 50,
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 3
      })
    }
    expect(JSON.stringify(spans)).not.toContain("secret")
  })

  it("carry prompts and answers only when capture_content is on", async () => {
    const before = receiver.spans.length
    await Effect.runPromise(traced(true).pipe(Effect.provide(tracingLayer(settings({ otlp_endpoint: receiver.url, capture_content: true }), "0.1.0"))))
    await receiver.received(before + 3)
    const attempt = receiver.spans.slice(before).find((s) => s.name === "chat gpt-4o")!
    expect(attempt.attributes["gen_ai.input.messages"]).toContain("secret prompt")
    expect(attempt.attributes["gen_ai.output.messages"]).toContain("secret answer")
  })
})

describe("traces of a running gateway", () => {
  it("have a span per request and per upstream attempt, consensus candidates included, with the GenAI attributes and no prompt text", async () => {
    const gateway = await startGateway(`
defaults:
  retry: { max_attempts: 1 }
models:
  - { id: flaky, provider: sim, sim: { latency_ms: 1, error_rate: 1, answers: ["x"] } }
  - { id: fast, provider: sim, sim: { latency_ms: 1, answers: ["Paris"] } }
  - { id: twin, provider: sim, sim: { latency_ms: 1, answers: ["Paris"] } }
routes:
  - { id: main, targets: [flaky, fast] }
telemetry: { otlp_endpoint: "${receiver.url}", service_name: quorum-e2e }
`)
    const before = receiver.spans.length
    try {
      const post = (path: string, body: unknown) =>
        fetch(`${gateway.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
      const messages = [{ role: "user", content: "secret prompt: capital of France?" }]
      expect((await post("/v1/chat/completions", { model: "main", messages, max_tokens: 20 })).status).toBe(200)
      expect((await post("/v1/consensus", { models: ["fast", "twin"], messages })).status).toBe(200)
    } finally {
      // Stopping the gateway flushes the exporter's batch.
      await gateway.close()
    }
    await receiver.received(before + 8)
    const spans = receiver.spans.slice(before).filter((s) => s.service === "quorum-e2e")
    const chat = spans.find((s) => s.name === "POST /v1/chat/completions")!
    const attempts = spans.filter((s) => s.traceId === chat.traceId && s.name.startsWith("chat "))
    expect(attempts.map((a) => a.attributes["quorum.deployment"]).sort()).toEqual(["fast", "flaky"])
    for (const a of attempts) {
      expect(a.parentSpanId).toBe(chat.spanId)
      expect(a.attributes).toMatchObject({ "gen_ai.operation.name": "chat", "gen_ai.provider.name": "sim", "gen_ai.request.max_tokens": 20 })
    }
    expect(attempts.find((a) => a.attributes["quorum.deployment"] === "fast")!.attributes).toMatchObject({ "gen_ai.response.finish_reasons": ["stop"] })
    const consensus = spans.find((s) => s.name === "POST /v1/consensus")!
    const candidates = spans.filter((s) => s.traceId === consensus.traceId && s.name.startsWith("consensus candidate "))
    expect(candidates.map((c) => c.attributes["quorum.consensus.model"]).sort()).toEqual(["fast", "twin"])
    for (const candidate of candidates) {
      // Each candidate's call is under its candidate's span.
      const calls = spans.filter((s) => s.parentSpanId === candidate.spanId && s.name.startsWith("chat "))
      expect(calls.map((c) => c.attributes["quorum.deployment"])).toEqual([candidate.attributes["quorum.consensus.model"]])
    }
    expect(JSON.stringify(spans)).not.toContain("secret")
  })
})
