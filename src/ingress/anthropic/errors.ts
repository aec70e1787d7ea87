/**
 * Errors in the shape Anthropic's SDK reads (`{type: "error", error: {type, message}}`),
 * from the OpenAI-shaped errors the rest of Quorum produces: the same message, the type
 * Anthropic uses for that HTTP status.
 */

import { Schema } from "effect"

/** The envelope, as a Schema for the OpenAPI document. */
export const AnthropicErrorBody = Schema.Struct({
  type: Schema.Literal("error"),
  error: Schema.Struct({ type: Schema.String, message: Schema.String }),
  request_id: Schema.Null
})

export type AnthropicErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "billing_error"
  | "permission_error"
  | "not_found_error"
  | "rate_limit_error"
  | "timeout_error"
  | "api_error"
  | "overloaded_error"

export const errorTypeOf = (status: number): AnthropicErrorType => {
  if (status === 401) return "authentication_error"
  if (status === 402) return "billing_error"
  if (status === 403) return "permission_error"
  if (status === 404) return "not_found_error"
  if (status === 429) return "rate_limit_error"
  if (status === 503 || status === 529) return "overloaded_error"
  if (status === 504) return "timeout_error"
  if (status >= 400 && status < 500) return "invalid_request_error"
  return "api_error"
}

export const anthropicError = (status: number, message: string) => ({
  type: "error" as const,
  error: { type: errorTypeOf(status), message },
  request_id: null
})
