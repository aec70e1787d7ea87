/**
 * A request body as text, up to a limit. Platform's reader destroys the socket when a
 * body passes its limit, so the client never hears why; this one stops buffering, lets
 * Node discard the rest, and fails with PayloadTooLarge so that a 413 goes out.
 */
import { Effect, Either } from "effect"
import type { IncomingMessage } from "node:http"
import type { Arrival } from "../billing/ticket"
import { InvalidRequest, PayloadTooLarge } from "./errors"

/** What a request's body came to: its text, or why there is none. */
export type BodyText = Either.Either<string, PayloadTooLarge | InvalidRequest>

/**
 * A hot route's body as the front door read it (hot/front-door.ts): its text, or undefined
 * when the client left before it was whole; and when the request arrived.
 */
export interface ReceivedBody {
  readonly text: BodyText | undefined
  readonly arrival: Arrival
}

/**
 * Collects a body of at most `maxBytes`, then calls `done` once (at once when the declared
 * length is already over). Plain callbacks: the hot routes read their body before their
 * fiber starts (see hot/front-door.ts). Returns what stops listening, for a client that
 * leaves first.
 */
export const collectBody = (incoming: IncomingMessage, maxBytes: number, done: (body: BodyText) => void): () => void => {
  const chunks: Array<Buffer> = []
  let size = 0
  const stop = () => {
    incoming.off("data", onData)
    incoming.off("end", onEnd)
    incoming.off("error", onError)
  }
  const onData = (chunk: Buffer) => {
    size += chunk.length
    if (size <= maxBytes) return void chunks.push(chunk)
    stop()
    // Flowing with no listener: the rest is read and dropped, and the socket lives on.
    incoming.resume()
    done(Either.left(new PayloadTooLarge({ limit: maxBytes })))
  }
  const onEnd = () => {
    stop()
    done(Either.right(Buffer.concat(chunks, size).toString("utf8")))
  }
  const onError = () => {
    stop()
    done(Either.left(new InvalidRequest({ message: "The request body could not be read", param: null, code: null })))
  }
  // Node discards an unread body once the answer is written; the connection stays usable.
  if (Number(incoming.headers["content-length"]) > maxBytes) done(Either.left(new PayloadTooLarge({ limit: maxBytes })))
  else incoming.on("data", onData).on("end", onEnd).on("error", onError)
  return stop
}

/**
 * The body as text, then as what `decode` makes of it, in one asynchronous step: the
 * checks a route makes of its body run in the same turn as the read, where an Effect
 * step for each cost ~30 µs of CPU a request (bench:floor).
 */
export const readBodyAs = <A, E>(
  incoming: IncomingMessage,
  maxBytes: number,
  decode: (text: string) => Either.Either<A, E>
): Effect.Effect<A, E | PayloadTooLarge | InvalidRequest> =>
  Effect.async((resume) => Effect.sync(collectBody(incoming, maxBytes, (body) => resume(Either.flatMap(body, decode)))))
