/**
 * Every failure a client can see, and its OpenAI-shaped answer. Upstream failures keep
 * the provider's reason (already redacted by the adapter) so callers can act on it.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Cause, Effect, Schema } from "effect"
import type { ErrorBody } from "../protocol/error-body"
import { newId } from "../domain/ids"
import type { UpstreamError } from "../providers/upstream-error"
import type { InvalidConsensusRequest, NoAnswer, NoUsableModel, NoValidAnswer } from "../consensus/engine"
import type { AllCoolingDown, OutsideLimits, UnknownModel } from "../routing/errors"
import type { AdmissionError } from "../billing/errors"

export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  message: Schema.String,
  param: Schema.NullOr(Schema.String),
  code: Schema.NullOr(Schema.String)
}) {}

export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  limit: Schema.Number
}) {}

export class RouteNotFound extends Schema.TaggedError<RouteNotFound>()("RouteNotFound", {
  method: Schema.String,
  path: Schema.String
}) {}

/** The admin API's key is missing or wrong, or the admin API is off. */
export class AdminUnauthorized extends Schema.TaggedError<AdminUnauthorized>()("AdminUnauthorized", { message: Schema.String }) {}

export class KeyNotFound extends Schema.TaggedError<KeyNotFound>()("KeyNotFound", { id: Schema.String }) {}

export type ClientError =
  | InvalidRequest
  | PayloadTooLarge
  | RouteNotFound
  | UnknownModel
  | AllCoolingDown
  | OutsideLimits
  | UpstreamError
  | InvalidConsensusRequest
  | NoAnswer
  | NoValidAnswer
  | NoUsableModel
  | AdmissionError
  | AdminUnauthorized
  | KeyNotFound

export interface ErrorAnswer {
  readonly status: number
  readonly body: ErrorBody
  readonly retryAfterSeconds?: number
}

const body = (message: string, type: string, param: string | null, code: string | null): ErrorBody => ({
  error: { message, type, param, code }
})

const upstreamAnswer = (error: UpstreamError): ErrorAnswer => {
  const who = error.deployment === undefined ? "upstream" : `upstream ${error.deployment}`
  const reason = `${who}: ${error.message}`
  switch (error.kind) {
    case "bad_request":
    case "unsupported":
      return { status: 400, body: body(reason, "invalid_request_error", error.param ?? null, error.kind === "unsupported" ? "unsupported_parameter" : "upstream_rejected") }
    case "rate_limited":
      return {
        status: 429,
        body: body(reason, "rate_limit_error", null, "rate_limit_exceeded"),
        ...(error.retryAfterMs === undefined ? {} : { retryAfterSeconds: Math.max(1, Math.ceil(error.retryAfterMs / 1000)) })
      }
    case "overloaded":
      return { status: 503, body: body(reason, "upstream_error", null, "upstream_overloaded") }
    case "timeout":
      return { status: 504, body: body(reason, "upstream_error", null, "upstream_timeout") }
    default:
      return { status: 502, body: body(reason, "upstream_error", null, `upstream_${error.kind}`) }
  }
}

export const errorAnswer = (error: ClientError): ErrorAnswer => {
  switch (error._tag) {
    case "InvalidRequest":
      return { status: 400, body: body(error.message, "invalid_request_error", error.param, error.code) }
    case "PayloadTooLarge":
      return {
        status: 413,
        body: body(`Request body is larger than the limit of ${error.limit} bytes`, "invalid_request_error", null, "request_too_large")
      }
    case "RouteNotFound":
      return {
        status: 404,
        body: body(`Unknown route: ${error.method} ${error.path}`, "invalid_request_error", null, "unknown_url")
      }
    case "UnknownModel":
      return {
        status: 404,
        body: body(
          `The model \`${error.model}\` does not exist; available: ${error.known.join(", ")}`,
          "invalid_request_error",
          "model",
          "model_not_found"
        )
      }
    case "AllCoolingDown":
      return {
        status: 503,
        body: body(
          `Every deployment of \`${error.model}\` is cooling down after repeated failures`,
          "upstream_error",
          null,
          "upstream_unavailable"
        ),
        retryAfterSeconds: Math.max(1, Math.ceil(error.retryAfterMs / 1000))
      }
    case "OutsideLimits":
      return {
        status: 400,
        body: body(`No target of \`${error.model}\` fits this request's limits: ${error.reasons}`, "invalid_request_error", "quorum", "no_target_within_limits")
      }
    case "UpstreamError":
      return upstreamAnswer(error)
    case "InvalidConsensusRequest":
      return { status: 400, body: body(error.message, "invalid_request_error", error.param, "invalid_value") }
    case "NoAnswer":
      return { status: 502, body: body(error.message, "upstream_error", null, "no_model_answered") }
    case "NoValidAnswer":
      // The models answered, but none validly (JSON that breaks the schema): an upstream failure, as a malformed response is.
      return { status: 502, body: body(error.message, "upstream_error", null, "no_valid_answer") }
    case "NoUsableModel":
      return {
        status: 403,
        body: body(
          `This key allows no model or route that a consensus can fan out to; it may use: ${error.allowed.join(", ") || "no model"}`,
          "invalid_request_error",
          "model",
          "model_not_allowed"
        )
      }
    case "Unauthorized":
    case "AdminUnauthorized":
      return { status: 401, body: body(error.message, "invalid_request_error", null, "invalid_api_key") }
    case "ModelNotAllowed":
      return {
        status: 403,
        body: body(
          `This key may not use ${error.models.map((m) => `\`${m}\``).join(", ")}; it may use: ${error.allowed.join(", ") || "no model"}`,
          "invalid_request_error",
          "model",
          "model_not_allowed"
        )
      }
    case "RateLimited":
      // OpenAI's own shape: the type names the limit (requests or tokens).
      return {
        status: 429,
        body: body(error.message, error.limit, null, "rate_limit_exceeded"),
        retryAfterSeconds: Math.max(1, Math.ceil(error.retryAfterMs / 1000))
      }
    case "InsufficientQuota":
      return { status: 429, body: body(error.message, "insufficient_quota", null, "insufficient_quota") }
    case "SpendStoreError":
      return { status: 503, body: body(`Quorum cannot meter this request: ${error.message}`, "server_error", null, "spend_store_unavailable") }
    case "KeyNotFound":
      return { status: 404, body: body(`No key with id \`${error.id}\``, "invalid_request_error", "id", "key_not_found") }
  }
}

export const errorResponse = (error: ClientError): HttpServerResponse.HttpServerResponse => {
  const answer = errorAnswer(error)
  return HttpServerResponse.unsafeJson(answer.body, {
    status: answer.status,
    ...(answer.retryAfterSeconds === undefined ? {} : { headers: { "retry-after": String(answer.retryAfterSeconds) } })
  })
}

/**
 * A defect (a bug, an exception nobody expected) as clients see it: a 500 in OpenAI's
 * shape that names the request, and nothing of the defect itself, which goes to the log.
 */
export const internalError = (requestId: string): ErrorBody =>
  body(`Quorum failed on this request because of an internal error; it is logged under request id ${requestId}.`, "server_error", null, "internal_error")

/** Logs a defect with its cause, under the request id the client was given. */
export const logDefect = (route: string, requestId: string, cause: Cause.Cause<unknown>) =>
  Effect.logError(`${route}: internal error`, cause).pipe(Effect.annotateLogs({ request_id: requestId, route }))

/**
 * Wraps a route so that no defect ends in an empty 500: every route that is not metered
 * (metered routes get the same from `metered`) should be wrapped once, where it is added
 * to the router. Typed failures pass through untouched.
 */
export const answeringDefects = <E, R>(
  route: string,
  handler: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R> =>
  Effect.catchAllCause(handler, (cause) => {
    if (!Cause.isDie(cause)) return Effect.failCause(cause)
    const requestId = newId("req")
    return Effect.as(
      logDefect(route, requestId, cause),
      HttpServerResponse.unsafeJson(internalError(requestId), { status: 500, headers: { "x-request-id": requestId } })
    )
  })
