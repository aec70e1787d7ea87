/**
 * Failures of the HTTP layer itself, and what every failure a client can see comes to.
 * Each error class says its own status and OpenAI-shaped body where it is defined
 * (routing, billing, consensus, providers); upstream failures keep the provider's reason
 * (already redacted by the adapter) so callers can act on it.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Cause, Effect, Schema } from "effect"
import { type ErrorAnswer, type ErrorBody, errorBody } from "../protocol/error-body"
import { newId } from "../domain/ids"
import type { UpstreamError } from "../providers/upstream-error"
import type { InvalidConsensusRequest, NoAnswer, NoUsableModel, NoValidAnswer } from "../consensus/engine"
import type { AllCoolingDown, OutsideLimits, UnknownModel } from "../routing/errors"
import type { AdmissionError } from "../billing/errors"

export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  message: Schema.String,
  param: Schema.NullOr(Schema.String),
  code: Schema.NullOr(Schema.String)
}) {
  get answer(): ErrorAnswer {
    return { status: 400, body: errorBody(this.message, "invalid_request_error", this.param, this.code) }
  }
}

export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  limit: Schema.Number
}) {
  get answer(): ErrorAnswer {
    return { status: 413, body: errorBody(`Request body is larger than the limit of ${this.limit} bytes`, "invalid_request_error", null, "request_too_large") }
  }
}

export class RouteNotFound extends Schema.TaggedError<RouteNotFound>()("RouteNotFound", {
  method: Schema.String,
  path: Schema.String
}) {
  get answer(): ErrorAnswer {
    return { status: 404, body: errorBody(`Unknown route: ${this.method} ${this.path}`, "invalid_request_error", null, "unknown_url") }
  }
}

/** The admin API's key is missing or wrong, or the admin API is off. */
export class AdminUnauthorized extends Schema.TaggedError<AdminUnauthorized>()("AdminUnauthorized", { message: Schema.String }) {
  get answer(): ErrorAnswer {
    return { status: 401, body: errorBody(this.message, "invalid_request_error", null, "invalid_api_key") }
  }
}

export class KeyNotFound extends Schema.TaggedError<KeyNotFound>()("KeyNotFound", { id: Schema.String }) {
  get answer(): ErrorAnswer {
    return { status: 404, body: errorBody(`No key with id \`${this.id}\``, "invalid_request_error", "id", "key_not_found") }
  }
}

/** Every failure a client may be answered with; each says its own status and body (`answer`), where it is defined. */
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

export type { ErrorAnswer } from "../protocol/error-body"

export const errorAnswer = (error: ClientError): ErrorAnswer => error.answer

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
  errorBody(`Quorum failed on this request because of an internal error; it is logged under request id ${requestId}.`, "server_error", null, "internal_error")

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
