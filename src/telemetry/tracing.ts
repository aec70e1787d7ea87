/**
 * OpenTelemetry traces, off unless an OTLP endpoint is configured (`telemetry.otlp_endpoint`,
 * or OpenTelemetry's own OTEL_EXPORTER_OTLP_ENDPOINT). Spans are Effect's (Effect.withSpan
 * in the request path, the router and the consensus fan-out), exported by the official
 * OTLP/HTTP exporter in batches off the request path. Attributes follow OpenTelemetry's
 * GenAI semantic conventions; prompt and answer text only when `capture_content` is on.
 */
import { NodeSdk, Tracer } from "@effect/opentelemetry"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, Schema } from "effect"
import type { ChatCompletionRequest } from "../protocol/chat-request"
import type { ChatCompletion, Usage } from "../protocol/chat-response"

export const TelemetrySettings = Schema.Struct({
  /** OTLP/HTTP base URL (the exporter posts to <url>/v1/traces), e.g. http://collector:4318. */
  otlp_endpoint: Schema.optional(Schema.String.pipe(Schema.pattern(/^https?:\/\//, { message: () => "expected an http:// or https:// URL" }))),
  service_name: Schema.optionalWith(Schema.String.pipe(Schema.minLength(1)), { default: () => "quorum" }),
  /** Share of requests traced, 0 to 1 (a caller's sampled trace is always followed). */
  sample_ratio: Schema.optionalWith(Schema.Number.pipe(Schema.between(0, 1)), { default: () => 1 }),
  /** Put prompts and answers on spans (gen_ai.input.messages, gen_ai.output.messages): off, since traces often leave the trust boundary. */
  capture_content: Schema.optionalWith(Schema.Boolean, { default: () => false })
})
export type TelemetrySettings = typeof TelemetrySettings.Type

/** The tracer, or no layer at all when no endpoint is set (spans then cost next to nothing). */
export const tracingLayer = (settings: TelemetrySettings, version: string): Layer.Layer<never> => {
  const endpoint = settings.otlp_endpoint ?? process.env["OTEL_EXPORTER_OTLP_ENDPOINT"]
  if (endpoint === undefined || endpoint === "") return Layer.empty
  return NodeSdk.layer(() => ({
    resource: { serviceName: settings.service_name, serviceVersion: version },
    tracerConfig: { sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.sample_ratio) }) },
    spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter({ url: `${endpoint.replace(/\/$/, "")}/v1/traces` }))
  })).pipe(Layer.discard)
}

type Attributes = Record<string, string | number | boolean | Array<string>>

/**
 * Puts attributes on the current span. Through the OpenTelemetry span itself when there
 * is one, because Effect's bridge writes an array as its JSON text, and the conventions
 * want `gen_ai.response.finish_reasons` as a list; on Effect's span otherwise.
 */
export const annotateSpan = (attributes: Attributes): Effect.Effect<void> =>
  Tracer.currentOtelSpan.pipe(
    Effect.flatMap((span) => Effect.sync(() => void span.setAttributes(attributes))),
    Effect.catchAll(() => Effect.annotateCurrentSpan(attributes))
  )

/** A chat call's request side, as the GenAI conventions name it. */
export const requestAttributes = (provider: string, request: ChatCompletionRequest, captureContent: boolean): Attributes => {
  const attributes: Attributes = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": provider,
    "gen_ai.request.model": request.model
  }
  const maxTokens = request.max_completion_tokens ?? request.max_tokens
  if (typeof maxTokens === "number") attributes["gen_ai.request.max_tokens"] = maxTokens
  if (typeof request.temperature === "number") attributes["gen_ai.request.temperature"] = request.temperature
  if (typeof request.top_p === "number") attributes["gen_ai.request.top_p"] = request.top_p
  if (typeof request.seed === "number") attributes["gen_ai.request.seed"] = request.seed
  if (captureContent) attributes["gen_ai.input.messages"] = JSON.stringify(request.messages)
  return attributes
}

/** A chat call's answer side. */
export const responseAttributes = (completion: Pick<ChatCompletion, "id" | "model" | "choices"> & { usage?: Usage | undefined }, captureContent: boolean): Attributes => {
  const attributes: Attributes = {
    "gen_ai.response.id": completion.id,
    "gen_ai.response.model": completion.model,
    "gen_ai.response.finish_reasons": completion.choices.map((c) => c.finish_reason ?? "unknown")
  }
  if (completion.usage !== undefined) {
    attributes["gen_ai.usage.input_tokens"] = completion.usage.prompt_tokens
    attributes["gen_ai.usage.output_tokens"] = completion.usage.completion_tokens
  }
  if (captureContent) attributes["gen_ai.output.messages"] = JSON.stringify(completion.choices.map((c) => c.message))
  return attributes
}
