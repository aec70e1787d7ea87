/**
 * Upstream HTTP, shared by every adapter. undici rather than Node's bundled fetch because
 * its Agent gives each deployment its own keep-alive pool and a real connect timeout;
 * Effect wraps each call so that interruption (client gone, timeout, early stop) aborts
 * the socket, and no retry happens anywhere but in Quorum's router.
 */
import { Effect, Option, Stream } from "effect"
import { createParser, type EventSourceMessage } from "eventsource-parser"
import { Agent, fetch as undiciFetch, type Response } from "undici"
import type { Timeouts } from "../../config/gateway-config"
import type { Redactor } from "../redact"
import { kindOfStatus, parseRetryAfter, UpstreamError } from "../upstream-error"

export type Fetch = typeof undiciFetch

export const makeAgent = (timeouts: Timeouts): Agent =>
  new Agent({
    connect: { timeout: timeouts.connectMs },
    keepAliveTimeout: 30_000,
    // Timeouts are Quorum's (first token, idle, total), enforced above this layer.
    headersTimeout: 0,
    bodyTimeout: 0
  })

/** A fetch bound to one deployment's pool. */
export const makeFetch = (agent: Agent): Fetch => (input, init) => undiciFetch(input, { ...init, dispatcher: agent })

/** What a connection-level failure of fetch was, as an UpstreamError. */
export const transportError = (cause: unknown, redact: Redactor): UpstreamError => {
  const code = findCode(cause)
  const timedOut = code === "UND_ERR_CONNECT_TIMEOUT" || code === "ETIMEDOUT"
  return new UpstreamError({
    kind: timedOut ? "timeout" : "connection",
    message: redact(timedOut ? "connecting to the upstream timed out" : `cannot reach the upstream (${code ?? describe(cause)})`)
  })
}

const findCode = (error: unknown): string | undefined => {
  let current: unknown = error
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === "string") return code
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error))

export interface PostOptions {
  readonly fetch: Fetch
  readonly url: string
  readonly headers: Record<string, string>
  readonly body: unknown
  readonly redact: Redactor
  /** The provider's error body → its human reason. */
  readonly errorMessage: (body: unknown) => string | undefined
}

const send = (options: PostOptions, signal: AbortSignal) =>
  Effect.tryPromise({
    try: () =>
      options.fetch(options.url, {
        method: "POST",
        headers: { "content-type": "application/json", ...options.headers },
        body: JSON.stringify(options.body),
        signal
      }),
    catch: (cause) => transportError(cause, options.redact)
  })

/** A non-2xx response as an UpstreamError carrying the provider's (redacted) reason. */
const failure = (response: Response, options: PostOptions) =>
  Effect.gen(function*() {
    const text = yield* Effect.promise(() => response.text().catch(() => ""))
    let reason: string | undefined
    try {
      reason = options.errorMessage(JSON.parse(text))
    } catch {
      reason = undefined
    }
    const retryAfterMs = parseRetryAfter((name) => response.headers.get(name))
    return yield* Effect.fail(
      new UpstreamError({
        kind: kindOfStatus(response.status),
        status: response.status,
        message: options.redact(reason ?? (text.slice(0, 500) || `HTTP ${response.status}`)),
        ...(retryAfterMs === undefined ? {} : { retryAfterMs })
      })
    )
  })

/** POST JSON, read JSON. */
export const postJson = (options: PostOptions): Effect.Effect<unknown, UpstreamError> =>
  Effect.flatMap(
    Effect.flatMap(Effect.sync(() => new AbortController()), (controller) =>
      send(options, controller.signal).pipe(
        Effect.flatMap((response) =>
          response.ok
            ? Effect.tryPromise({
              try: () => response.text(),
              catch: (cause) => transportError(cause, options.redact)
            })
            : failure(response, options)
        ),
        Effect.onInterrupt(() => Effect.sync(() => controller.abort()))
      )),
    (text) =>
      Effect.try({
        try: () => JSON.parse(text) as unknown,
        catch: () => new UpstreamError({ kind: "malformed", message: "the upstream answered with malformed JSON" })
      })
  )

/**
 * POST JSON, read Server-Sent Events. The request is aborted when the stream's consumer
 * stops early, fails or is interrupted.
 */
export const postSse = (options: PostOptions): Stream.Stream<EventSourceMessage, UpstreamError> =>
  Stream.unwrapScoped(
    Effect.gen(function*() {
      const controller = yield* Effect.acquireRelease(
        Effect.sync(() => new AbortController()),
        (c) => Effect.sync(() => c.abort())
      )
      const response = yield* send(options, controller.signal)
      if (!response.ok) return yield* failure(response, options)
      const body = response.body
      if (body === null) {
        return yield* Effect.fail(new UpstreamError({ kind: "malformed", message: "the upstream stream has no body" }))
      }
      return decodeSse(readIterable(body, (cause) => transportError(cause, options.redact)))
    })
  )

/**
 * Reads an async iterable without ever calling its `return()`. Async iterators queue
 * `return()` behind the pending `next()`, which a stalled upstream never settles, so a
 * stream closed on an idle timeout would hang in its finalizer. Callers close the source
 * by aborting its request instead, which settles the pending read.
 */
export const readIterable = <A>(
  iterable: AsyncIterable<A>,
  onError: (cause: unknown) => UpstreamError
): Stream.Stream<A, UpstreamError> =>
  Stream.suspend(() => {
    const iterator = iterable[Symbol.asyncIterator]()
    return Stream.repeatEffectOption(
      Effect.tryPromise({ try: () => iterator.next(), catch: (cause) => Option.some(onError(cause)) }).pipe(
        Effect.flatMap((result) => (result.done === true ? Effect.fail(Option.none()) : Effect.succeed(result.value)))
      )
    )
  })

/** Bytes → SSE messages, across chunk boundaries. */
export const decodeSse = <E>(bytes: Stream.Stream<Uint8Array, E>): Stream.Stream<EventSourceMessage, E> =>
  Stream.suspend(() => {
    const decoder = new TextDecoder()
    let pending: Array<EventSourceMessage> = []
    const parser = createParser({ onEvent: (event) => pending.push(event) })
    return Stream.mapConcat(bytes, (chunk) => {
      parser.feed(decoder.decode(chunk, { stream: true }))
      const out = pending
      pending = []
      return out
    })
  })
