import { Schema } from "effect"

/** OpenAI's error envelope: every error Quorum answers with has this shape. */
export const ErrorBody = Schema.Struct({
  error: Schema.Struct({
    message: Schema.String,
    type: Schema.String,
    param: Schema.NullOr(Schema.String),
    code: Schema.NullOr(Schema.String)
  })
})
export type ErrorBody = typeof ErrorBody.Type

/** A failure as a client sees it: its HTTP status, OpenAI's error body, and when to retry. */
export interface ErrorAnswer {
  readonly status: number
  readonly body: ErrorBody
  readonly retryAfterSeconds?: number
}

/**
 * A failure that says how it is answered, where it is defined: each error class of the
 * layers below http implements `answer` (its status, type and code), so that http maps
 * none of them itself.
 */
export interface AnsweredError {
  readonly answer: ErrorAnswer
}

export const errorBody = (message: string, type: string, param: string | null, code: string | null): ErrorBody => ({
  error: { message, type, param, code }
})

/** Seconds to wait, from milliseconds, never 0: a retry-after of 0 invites a retry storm. */
export const retryAfterSeconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000))
