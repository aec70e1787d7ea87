/**
 * What a hot route answers, before it is written: a JSON body, or an event stream. Hot
 * routes are served from node:http directly (see front-door.ts), so their answers are
 * plain values rather than the platform's HttpServerResponse.
 */
import type { Effect } from "effect"
import type { Pull } from "../../domain/pull"
import { type ClientError, errorAnswer } from "../errors"

export type Headers = Readonly<Record<string, string>>

export interface JsonReply {
  readonly _tag: "Json"
  readonly status: number
  readonly headers: Headers
  readonly body: unknown
}

export interface SseReply {
  readonly _tag: "Sse"
  readonly headers: Headers
  /** Frames, already encoded, as a pull. It never fails: a failure after the first byte is an error event in it. */
  readonly body: Pull<Uint8Array, never>
  /** Run once the body is over, however it ended (written whole, or the client left). */
  readonly close: Effect.Effect<void>
  /** HTTP trailers (the cost, known only once the body has ended): their names up front, values read at the end. */
  readonly trailers?: Trailers
}

export interface Trailers {
  readonly names: ReadonlyArray<string>
  readonly values: () => Headers
}

export type Reply = JsonReply | SseReply

export const json = (body: unknown, headers: Headers = {}, status = 200): JsonReply => ({ _tag: "Json", status, headers, body })

export const sseReply = (body: Pull<Uint8Array, never>, close: Effect.Effect<void>, headers: Headers, trailers?: Trailers): SseReply =>
  trailers === undefined ? { _tag: "Sse", headers, body, close } : { _tag: "Sse", headers, body, close, trailers }

/** A failure in OpenAI's error shape, with retry-after when the error says when to retry. */
export const errorReply = (error: ClientError, headers: Headers = {}): JsonReply => {
  const answer = errorAnswer(error)
  return json(
    answer.body,
    answer.retryAfterSeconds === undefined ? headers : { ...headers, "retry-after": String(answer.retryAfterSeconds) },
    answer.status
  )
}

export const withHeaders = (reply: Reply, headers: Headers): Reply => ({ ...reply, headers: { ...reply.headers, ...headers } })
