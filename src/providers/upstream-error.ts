import { Schema } from "effect"
import { type ErrorAnswer, errorBody, retryAfterSeconds } from "../protocol/error-body"

/**
 * Why an upstream call failed, in the terms routing decides on. `message` carries the
 * provider's reason for the client, already stripped of secrets.
 */
export const FailureKind = Schema.Literal(
  "rate_limited", // 429: retry after the provider's delay, else fall back
  "overloaded", // 503/529: retry, fall back
  "server", // other 5xx
  "timeout", // connect, first token, idle or total
  "connection", // refused, reset, DNS
  "malformed", // a body that is not the provider's documented format
  "stream_cut", // the stream ended without the provider's terminal event
  "bad_request", // the caller's request is wrong: no retry, no fallback
  "unsupported", // this provider cannot take a field: try another target, else 400
  "auth", // the operator's key was refused
  "not_found", // the upstream does not know the model
  "not_sent" // Quorum failed before the request left (its body could not be serialized): a bug of ours, never the upstream's
)
export type FailureKind = typeof FailureKind.Type

export class UpstreamError extends Schema.TaggedError<UpstreamError>()("UpstreamError", {
  kind: FailureKind,
  message: Schema.String,
  status: Schema.optional(Schema.Number),
  retryAfterMs: Schema.optional(Schema.Number),
  /** The request field at fault, for bad_request and unsupported. */
  param: Schema.optional(Schema.String),
  /** Set by the router: which deployment failed. */
  deployment: Schema.optional(Schema.String),
  /** not_sent: what was thrown, for the log (never shown to a client). */
  cause: Schema.optional(Schema.Unknown)
}) {
  /** The provider's reason, naming the deployment, with the status its kind means for the client. */
  get answer(): ErrorAnswer {
    const who = this.deployment === undefined ? "upstream" : `upstream ${this.deployment}`
    const reason = `${who}: ${this.message}`
    switch (this.kind) {
      case "bad_request":
      case "unsupported":
        return { status: 400, body: errorBody(reason, "invalid_request_error", this.param ?? null, this.kind === "unsupported" ? "unsupported_parameter" : "upstream_rejected") }
      case "rate_limited":
        return {
          status: 429,
          body: errorBody(reason, "rate_limit_error", null, "rate_limit_exceeded"),
          ...(this.retryAfterMs === undefined ? {} : { retryAfterSeconds: retryAfterSeconds(this.retryAfterMs) })
        }
      case "overloaded":
        return { status: 503, body: errorBody(reason, "upstream_error", null, "upstream_overloaded") }
      case "timeout":
        return { status: 504, body: errorBody(reason, "upstream_error", null, "upstream_timeout") }
      default:
        return { status: 502, body: errorBody(reason, "upstream_error", null, `upstream_${this.kind}`) }
    }
  }
}

const RETRYABLE: ReadonlySet<FailureKind> = new Set([
  "rate_limited",
  "overloaded",
  "server",
  "timeout",
  "connection",
  "malformed"
])

/** Worth another attempt at the same deployment. */
export const isRetryable = (error: UpstreamError): boolean => RETRYABLE.has(error.kind)

/** Worth trying the next target of a route (the caller's own mistakes are not). */
export const allowsFallback = (error: UpstreamError): boolean => error.kind !== "bad_request"

/**
 * Counts against the deployment's health: only what the upstream did (no answer, a
 * timeout, a 5xx or 429, a malformed or cut answer, the operator's key refused with a
 * 401). Never a 4xx the request's own content can cause (400, 422, and 403/404, which
 * providers give for a file id or a resource the caller names), nor a failure of ours
 * before sending (not_sent): else one client could open a model's circuit for everyone.
 */
export const countsAsFailure = (error: UpstreamError): boolean =>
  RETRYABLE.has(error.kind) || error.kind === "stream_cut" || (error.kind === "auth" && error.status === 401)

/** The failure kind of an HTTP status from an upstream. */
export const kindOfStatus = (status: number): FailureKind => {
  if (status === 429) return "rate_limited"
  if (status === 503 || status === 529) return "overloaded"
  if (status === 408 || status === 504) return "timeout"
  if (status >= 500) return "server"
  if (status === 401 || status === 403) return "auth"
  if (status === 404) return "not_found"
  return "bad_request"
}

/** `retry-after-ms`, else `retry-after` in seconds or as an HTTP date. */
export const parseRetryAfter = (get: (name: string) => string | null | undefined): number | undefined => {
  const ms = get("retry-after-ms")
  if (ms != null && ms.trim() !== "" && Number.isFinite(Number(ms))) return Math.max(0, Number(ms))
  const value = get("retry-after")
  if (value == null || value.trim() === "") return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now())
}

/** The same failure with some fields changed (an error instance cannot be spread into its constructor). */
export const amend = (
  error: UpstreamError,
  patch: Partial<Pick<UpstreamError, "message" | "deployment">>
): UpstreamError => {
  const deployment = patch.deployment ?? error.deployment
  return new UpstreamError({
    kind: error.kind,
    message: patch.message ?? error.message,
    ...(error.status === undefined ? {} : { status: error.status }),
    ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
    ...(error.param === undefined ? {} : { param: error.param }),
    ...(deployment === undefined ? {} : { deployment })
  })
}
