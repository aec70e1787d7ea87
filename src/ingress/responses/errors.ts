/**
 * Errors for Responses API clients. Over HTTP the Responses API answers errors in the same
 * envelope as chat completions (`{error: {message, type, param, code}}`), so a refusal here
 * is the gateway's usual 400 body; inside a stream a failure is a `response.failed` event
 * whose response carries `error: {code, message}` with one of OpenAI's ResponseError codes.
 */
import type { ErrorBody } from "../../protocol/error-body"

/** Why a Responses request cannot be carried to a chat completion, and which field to change. */
export interface Refusal {
  readonly param: string
  readonly message: string
  /** unknown_parameter, unsupported_parameter or unsupported_value, as OpenAI names them. */
  readonly code: "unknown_parameter" | "unsupported_parameter" | "unsupported_value" | "invalid_value"
}

/** The status and body to answer a refusal with. */
export const refusalAnswer = (refusal: Refusal): { readonly status: 400; readonly body: ErrorBody } => ({
  status: 400,
  body: { error: { message: refusal.message, type: "invalid_request_error", param: refusal.param, code: refusal.code } }
})

/** The codes a failed response's `error.code` may take that a gateway can produce. */
export type ResponseErrorCode = "server_error" | "rate_limit_exceeded"

/** A stream's failure, by the HTTP status the same failure would have had before the stream began. */
export const responseErrorCodeOf = (status: number): ResponseErrorCode => (status === 429 ? "rate_limit_exceeded" : "server_error")
