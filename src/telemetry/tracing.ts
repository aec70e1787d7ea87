/**
 * OpenTelemetry traces, off unless an OTLP endpoint is configured (`telemetry.otlp_endpoint`,
 * or OpenTelemetry's own OTEL_EXPORTER_OTLP_ENDPOINT). Spans are Effect's (Effect.withSpan
 * in the request path, the router and the consensus fan-out), exported by the official
 * OTLP/HTTP exporter in batches off the request path. Attributes follow OpenTelemetry's
 * GenAI semantic conventions; prompt and answer text only when `capture_content` is on.
 */
import { NodeSdk, Resource, Tracer } from "@effect/opentelemetry"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer } from "effect"
import type { Deployment } from "../config/gateway-config"
import type { ChatCompletionRequest } from "../protocol/chat-request"
import type { ChatCompletion, Usage } from "../protocol/chat-response"
import { type TelemetrySettings, tracesEndpoint } from "../config/telemetry"
import { Tracing } from "./tracing-tag"

export { TelemetrySettings } from "../config/telemetry"



/** The tracer, or no layer at all when no endpoint is set (spans then cost next to nothing). */
export const tracingLayer = (settings: TelemetrySettings, version: string): Layer.Layer<never> => {
  const endpoint = tracesEndpoint(settings)
  if (endpoint === undefined) return Layer.empty
  return NodeSdk.layer(() => ({
    resource: { serviceName: settings.service_name, serviceVersion: version },
    tracerConfig: { sampler: sampler(settings) },
    spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter({ url: `${endpoint.replace(/\/$/, "")}/v1/traces` }))
  })).pipe(Layer.discard)
}

const sampler = (settings: TelemetrySettings) => new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.sample_ratio) })

/**
 * The request path's spans (the Tracing service), exported to `endpoint`. Each request's
 * effect runs under the OpenTelemetry-backed tracer (Effect.withTracer), so the spans its
 * fibers open (router attempts, consensus candidates, forked or not) land in its trace;
 * the exporter batches off the request path and flushes when the gateway stops.
 */
export const TracingLive = (settings: TelemetrySettings, version: string, endpoint: string): Layer.Layer<Tracing> =>
  Layer.effect(
    Tracing,
    Effect.map(Tracer.make, (tracer) => ({
      request: (name, attributes, effect) =>
        effect.pipe(Effect.withSpan(name, { kind: "server", attributes }), Effect.withTracer(tracer)),
      candidate: (model, effect) => Effect.withSpan(effect, `consensus candidate ${model}`, { attributes: { "quorum.consensus.model": model } }),
      attempt: (deployment: Deployment, request, effect) =>
        effect.pipe(
          Effect.tap((answer) =>
            answer !== null && typeof answer === "object" && "choices" in answer && "id" in answer
              ? annotateSpan(responseAttributes(answer as ChatCompletion, settings.capture_content))
              : Effect.void
          ),
          Effect.withSpan(`chat ${deployment.upstreamModel}`, {
            kind: "client",
            attributes: { ...requestAttributes(deployment.provider, { ...request, model: deployment.upstreamModel }, settings.capture_content), "quorum.deployment": deployment.id }
          })
        )
    }))
  ).pipe(
    Layer.provide(Tracer.layerTracer),
    Layer.provide(NodeSdk.layerTracerProvider(new BatchSpanProcessor(new OTLPTraceExporter({ url: `${endpoint.replace(/\/$/, "")}/v1/traces` })), { sampler: sampler(settings) })),
    Layer.provide(Resource.layer({ serviceName: settings.service_name, serviceVersion: version }))
  )

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
