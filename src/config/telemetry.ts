/**
 * The config's `telemetry:` section. Apart from tracing.ts so that reading a config never
 * loads the OpenTelemetry SDK, which a gateway without a collector never needs.
 */
import { Schema } from "effect"

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

/** The OTLP endpoint traces go to, if any: the config's, else OpenTelemetry's own variable. */
export const tracesEndpoint = (settings: TelemetrySettings): string | undefined => {
  const endpoint = settings.otlp_endpoint ?? process.env["OTEL_EXPORTER_OTLP_ENDPOINT"]
  return endpoint === undefined || endpoint === "" ? undefined : endpoint
}
