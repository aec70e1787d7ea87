/**
 * Upstream HTTP, shared by every adapter. undici rather than Node's bundled fetch because
 * its Agent gives each deployment its own keep-alive pool and a real connect timeout;
 * Effect wraps each call so that interruption (client gone, timeout, early stop) aborts
 * the socket, and no retry happens anywhere but in Quorum's router.
 */
import { Chunk, Effect, Exit, Option, Stream } from "effect"
import { createParser, type EventSourceMessage } from "eventsource-parser"
import { Agent, type Dispatcher, request } from "undici"
import type { Timeouts } from "../../config/gateway-config"
import type { CallDeadline } from "../provider"
import type { Redactor } from "../redact"
import { kindOfStatus, parseRetryAfter, UpstreamError } from "../upstream-error"
import { LiteResponse } from "./lite-response"

export type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

export const makeAgent = (timeouts: Timeouts, connections: number): Agent =>
  new Agent({
    // Per origin: a deployment's calls beyond it wait in undici's queue, under their own deadlines.
    connections,
    connect: { timeout: timeouts.connectMs },
    keepAliveTimeout: 30_000,
    // Total and first-token deadlines are set per call; silence on the socket is idle_ms.
    // undici's own timer wheel checks it, which costs nothing per chunk, where a timeout
    // around each pull of an Effect Stream forks a fiber per chunk.
    headersTimeout: 0,
    bodyTimeout: timeouts.idleMs
  })

const NULL_BODY = new Set([101, 204, 205, 304])

const headerRecord = (headers: RequestInit["headers"]): Record<string, string> => {
  if (headers === undefined) return {}
  if (headers instanceof Headers) return Object.fromEntries(headers)
  if (Array.isArray(headers)) return Object.fromEntries(headers)
  return headers as Record<string, string>
}

/**
 * fetch over undici's `request`, bound to one deployment's pool. Measured here, undici's
 * own fetch cost about 400 µs of CPU a call against 170 µs for `request`, and a real
 * Response object most of the rest: the gateway's whole budget is under a millisecond.
 * Buffered answers come back as text, event streams as undici's stream.
 */
export const makeFetch = (agent: Agent): Fetch => async (input, init) => {
  try {
    return await fetchOnce(agent, input, init)
  } catch (error) {
    throw init?.signal?.aborted === true ? error : new TransportFailure(error)
  }
}

/**
 * A connection-level failure, carrying undici's error code. The openai SDK reports any
 * error whose message or cause says "timeout" as its own timeout and drops both, which
 * would make a connect or idle timeout look like total_ms; neither field says it here.
 */
export class TransportFailure extends Error {
  readonly code: string | undefined
  constructor(readonly source: unknown) {
    super("the upstream connection failed")
    this.code = findCode(source)
  }
}

const fetchOnce = async (agent: Agent, input: string | URL | Request, init: RequestInit | undefined): Promise<Response> => {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url
  const res = await request(url, {
    method: (init?.method ?? "GET") as Dispatcher.HttpMethod,
    headers: headerRecord(init?.headers),
    // Both callers (the openai SDK and postJson) send JSON text.
    body: (init?.body ?? null) as string | null,
    ...(init?.signal == null ? {} : { signal: init.signal }),
    dispatcher: agent
  })
  const status = res.statusCode
  const streaming = String(res.headers["content-type"] ?? "").includes("text/event-stream")
  let response: LiteResponse
  if (NULL_BODY.has(status)) {
    res.body.resume()
    response = new LiteResponse(status, res.headers, url, "", null)
  } else if (streaming) {
    response = new LiteResponse(status, res.headers, url, null, res.body)
  } else {
    response = new LiteResponse(status, res.headers, url, await res.body.text(), null)
  }
  // Its readers use only what LiteResponse has (see lite-response.ts).
  return response as unknown as Response
}

/**
 * A failure raised by JavaScript itself in this process before anything was sent: the
 * openai SDK's JSON.stringify of a body too deep for the stack (RangeError) or holding a
 * value JSON cannot (TypeError). Connection failures always carry a code (undici's
 * UND_ERR_*, the system's ECONNRESET, …) or come wrapped in a TransportFailure.
 */
const thrownBeforeSending = (cause: unknown): boolean =>
  !(cause instanceof TransportFailure) && findCode(cause) === undefined && (cause instanceof RangeError || cause instanceof TypeError)

/** A request that never left: Quorum's failure, which the router answers as a 500 and no circuit counts. */
export const notSent = (cause: unknown): UpstreamError =>
  new UpstreamError({ kind: "not_sent", message: `the request could not be sent: ${describe(cause)}`, cause })

/** What a connection-level failure was, as an UpstreamError. */
export const transportError = (cause: unknown, redact: Redactor, timeouts: Timeouts): UpstreamError => {
  if (thrownBeforeSending(cause)) return notSent(cause)
  const code = findCode(cause)
  switch (code) {
    case "UND_ERR_CONNECT_TIMEOUT":
    case "ETIMEDOUT":
      return new UpstreamError({ kind: "timeout", message: `connecting took longer than ${timeouts.connectMs} ms (connect_ms)` })
    case "UND_ERR_BODY_TIMEOUT":
      return new UpstreamError({ kind: "timeout", message: `no chunk for ${timeouts.idleMs} ms (idle_ms)` })
    default:
      return new UpstreamError({ kind: "connection", message: redact(`cannot reach the upstream (${code ?? describe(cause)})`) })
  }
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

const describe = (error: unknown): string =>
  error instanceof TransportFailure ? describe(error.source) : error instanceof Error ? error.message : String(error)

export interface PostOptions {
  readonly fetch: Fetch
  readonly url: string
  readonly timeouts: Timeouts
  readonly deadline: CallDeadline
  readonly headers: Record<string, string>
  readonly body: unknown
  readonly redact: Redactor
  /** The provider's error body → its human reason. */
  readonly errorMessage: (body: unknown) => string | undefined
}

/** Serialized apart from the call: a body JSON cannot hold must never look like a connection failure. */
const serialize = (body: unknown) => Effect.try({ try: () => JSON.stringify(body), catch: notSent })

const send = (options: PostOptions, signal: AbortSignal) =>
  Effect.flatMap(serialize(options.body), (body) =>
    Effect.tryPromise({
      try: () =>
        options.fetch(options.url, {
          method: "POST",
          headers: { "content-type": "application/json", ...options.headers },
          body,
          signal
        }),
      catch: (cause) => transportError(cause, options.redact, options.timeouts)
    }))

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

export const totalTimeout = ({ ms, setting }: CallDeadline): UpstreamError =>
  new UpstreamError({ kind: "timeout", message: `no response within ${ms} ms (${setting})` })

/**
 * An AbortController that aborts itself at the call's deadline: one native timer per
 * call. Any failure after it fired is reported as the timeout it was.
 */
export const deadlineController = (deadline: CallDeadline) => {
  const controller = new AbortController()
  let expired = false
  const timer = setTimeout(() => {
    expired = true
    controller.abort(ABORTED)
  }, deadline.ms)
  return {
    signal: controller.signal,
    /** The failure to report: the timeout, if that is what ended the call. */
    explain: (error: UpstreamError): UpstreamError => (expired ? totalTimeout(deadline) : error),
    close: () => {
      clearTimeout(timer)
      controller.abort(ABORTED)
    },
    /** The call is over and its body read: nothing is left to abort (an abort still costs its listeners' dispatch). */
    finished: () => clearTimeout(timer)
  }
}

/**
 * One reason for every abort: `abort()` without one builds a DOMException, stack trace
 * included, on every call (6 % of a worker's CPU in a profile), and closing a finished
 * call is what every call does. The reason is never shown: the failure that is reported
 * is the timeout, or nothing (the request is gone).
 */
const ABORTED = new DOMException("the upstream call was closed", "AbortError")

/** POST JSON, read JSON, within the call's deadline. */
export const postJson = (options: PostOptions): Effect.Effect<unknown, UpstreamError> =>
  Effect.flatMap(
    Effect.acquireUseRelease(
      Effect.sync(() => deadlineController(options.deadline)),
      (deadline) =>
        send(options, deadline.signal).pipe(
          Effect.flatMap((response) =>
            response.ok
              ? Effect.tryPromise({
                try: () => response.text(),
                catch: (cause) => transportError(cause, options.redact, options.timeouts)
              })
              : failure(response, options)
          ),
          Effect.mapError(deadline.explain)
        ),
      (deadline, exit) => Effect.sync(Exit.isSuccess(exit) ? deadline.finished : deadline.close)
    ),
    (text) =>
      Effect.try({
        try: () => JSON.parse(text) as unknown,
        catch: () => new UpstreamError({ kind: "malformed", message: "the upstream answered with malformed JSON" })
      })
  )

/**
 * Decodes one Server-Sent Event of a provider's stream: pushes what it carries (nothing,
 * one chunk or several) into `out`, or returns the failure it reports.
 */
export type EventDecoder<A> = (event: EventSourceMessage, out: Array<A>) => UpstreamError | undefined

export interface StreamEnd<A> {
  /** Whether an element is the provider's terminal signal: a stream that ends before one went by was cut. */
  readonly isTerminal: (element: A) => boolean
  /** What was missing, for the stream_cut message ("it sent a finish_reason"). */
  readonly expected: string
}

/**
 * POST JSON, read Server-Sent Events, decoded as they come, ended at the call's deadline.
 * The request is aborted when the stream's consumer stops early, fails or is interrupted.
 *
 * Reading, SSE parsing, decoding and the check for a cut stream are one step per network
 * read: every Stream operator costs on each element and on the first pull, which is
 * what a client waits on before its first token.
 */
export const postSse = <A>(options: PostOptions, makeDecoder: () => EventDecoder<A>, end: StreamEnd<A>): Stream.Stream<A, UpstreamError> =>
  Stream.unwrapScoped(
    Effect.gen(function*() {
      const deadline = yield* Effect.acquireRelease(
        Effect.sync(() => deadlineController(options.deadline)),
        (d) => Effect.sync(d.close)
      )
      const response = yield* Effect.mapError(send(options, deadline.signal), deadline.explain)
      if (!response.ok) return yield* failure(response, options)
      const body = response.body
      if (body === null) {
        return yield* Effect.fail(new UpstreamError({ kind: "malformed", message: "the upstream stream has no body" }))
      }
      // A connection lost while the body streams is a cut stream, not an unreachable upstream.
      const readFailure = (cause: unknown) => {
        const error = deadline.explain(transportError(cause, options.redact, options.timeouts))
        return error.kind === "connection" ? cutBefore(end) : error
      }
      return Stream.repeatEffectChunkOption(eventReader(body, makeDecoder(), end, readFailure, deadline.explain))
    })
  )

const cutBefore = ({ expected }: { readonly expected: string }) =>
  new UpstreamError({ kind: "stream_cut", message: `the upstream closed the stream before ${expected}` })

/**
 * One pull: the next network read, as the elements its events carry. Reads the body's
 * iterator without ever calling its `return()`: async iterators queue `return()` behind
 * the pending `next()`, which a stalled upstream never settles, so a stream closed on an
 * idle timeout would hang in its finalizer. Callers close the source by aborting its
 * request instead, which settles the pending read.
 */
const eventReader = <A>(
  body: AsyncIterable<Uint8Array>,
  decode: EventDecoder<A>,
  end: StreamEnd<A>,
  onError: (cause: unknown) => UpstreamError,
  explain: (error: UpstreamError) => UpstreamError
): Effect.Effect<Chunk.Chunk<A>, Option.Option<UpstreamError>> => {
  const iterator = body[Symbol.asyncIterator]()
  const text = new TextDecoder()
  let out: Array<A> = []
  let failed: UpstreamError | undefined
  let finished = false
  const parser = createParser({
    onEvent: (event) => {
      if (failed === undefined) failed = decode(event, out)
    }
  })
  const next = Effect.tryPromise({ try: () => iterator.next(), catch: (cause) => Option.some(onError(cause)) })
  return Effect.flatMap(next, (result): Effect.Effect<Chunk.Chunk<A>, Option.Option<UpstreamError>> => {
    if (result.done === true) {
      return finished
        ? Effect.fail(Option.none())
        : Effect.fail(Option.some(explain(cutBefore(end))))
    }
    parser.feed(text.decode(result.value, { stream: true }))
    if (failed !== undefined) return Effect.fail(Option.some(failed))
    const elements = out
    out = []
    if (!finished) finished = elements.some(end.isTerminal)
    return Effect.succeed(Chunk.unsafeFromArray(elements))
  })
}
