/**
 * Upstream HTTP, shared by every adapter. undici rather than Node's bundled fetch because
 * its Pool gives each deployment its own keep-alive connections and a real connect timeout;
 * Effect wraps each call so that interruption (client gone, timeout, early stop) aborts
 * the socket, and no retry happens anywhere but in Quorum's router.
 */
import { Chunk, Effect, Exit, Option, type Scope } from "effect"
import { createParser, type EventSourceMessage } from "eventsource-parser"
import { EventEmitter } from "node:events"
import { type Dispatcher, Pool } from "undici"
import type { Timeouts } from "../../config/gateway-config"
import type { Pull } from "../../domain/pull"
import type { CallDeadline } from "../provider"
import type { Redactor } from "../redact"
import { kindOfStatus, parseRetryAfter, UpstreamError } from "../upstream-error"

/**
 * A deployment's connections: a keep-alive pool per origin (one, in practice), asked by
 * path. undici's top-level `request(url, {dispatcher})` parses the URL and finds the
 * origin's pool on every call, ~25 µs of CPU that a proxy's whole call costs three times.
 */
export interface Upstream {
  /** A call whose answer is read as a stream (event streams). */
  readonly request: (url: string, headers: Record<string, string>, body: string, signal: CallSignal) => Promise<Answer>
  /**
   * A call whose whole answer is read into memory, reported to `done` once; returns the
   * call's abort. Through undici's dispatch: no Readable and no async resource per call
   * as `request` makes, ~20 µs of CPU a call less (bench:floor).
   */
  readonly call: (url: string, headers: Record<string, string>, body: string, done: (result: Buffered) => void) => (reason: Error) => void
}

/** A whole answer, or the transport's failure. */
export type Buffered =
  | { readonly _tag: "Answer"; readonly status: number; readonly header: (name: string) => string | undefined; readonly text: string }
  | { readonly _tag: "Failed"; readonly cause: unknown }

/** A header of undici's raw list ([name, value, name, value, …]), by lower-case name. */
const rawHeader = (raw: ReadonlyArray<Buffer>) => (name: string): string | undefined => {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (String(raw[i]).toLowerCase() === name) return String(raw[i + 1])
  }
  return undefined
}

const bufferedCall = (pool: Pool, path: string, headers: Record<string, string>, body: string, done: (result: Buffered) => void) => {
  let abortCall: ((reason?: Error) => void) | undefined
  let abortedWith: Error | undefined
  let status = 0
  let raw: ReadonlyArray<Buffer> = []
  let chunks: Array<Buffer> = []
  pool.dispatch({ path, method: "POST", headers, body }, {
    onConnect: (abort) => {
      abortCall = abort
      if (abortedWith !== undefined) abort(abortedWith)
    },
    onHeaders: (statusCode, rawHeaders) => {
      // An informational (1xx) answer comes before the real one.
      status = statusCode
      raw = rawHeaders
      chunks = []
      return true
    },
    onData: (chunk) => {
      chunks.push(chunk)
      return true
    },
    onComplete: () => done({ _tag: "Answer", status, header: rawHeader(raw), text: Buffer.concat(chunks).toString("utf8") }),
    onError: (cause) => done({ _tag: "Failed", cause })
  })
  return (reason: Error) => {
    abortedWith = reason
    abortCall?.(reason)
  }
}

export const makeUpstream = (timeouts: Timeouts, connections: number): Upstream => {
  const pools = new Map<string, Pool>()
  const targets = new Map<string, { readonly pool: Pool; readonly path: string }>()
  const poolFor = (origin: string): Pool => {
    let pool = pools.get(origin)
    if (pool === undefined) {
      pool = new Pool(origin, {
        // Calls beyond it wait in undici's queue, under their own deadlines.
        connections,
        connect: { timeout: timeouts.connectMs },
        keepAliveTimeout: 30_000,
        // Total and first-token deadlines are set per call; silence on the socket is idle_ms.
        // undici's own timer wheel checks it, which costs nothing per chunk, where a timeout
        // around each pull of an Effect Stream forks a fiber per chunk.
        headersTimeout: 0,
        bodyTimeout: timeouts.idleMs
      })
      pools.set(origin, pool)
    }
    return pool
  }
  const targetOf = (url: string) => {
    let target = targets.get(url)
    if (target === undefined) {
      const parsed = new URL(url)
      target = { pool: poolFor(parsed.origin), path: `${parsed.pathname}${parsed.search}` }
      // A client's URLs are a handful per deployment; the bound only guards against a caller that varies them.
      if (targets.size < 1_000) targets.set(url, target)
    }
    return target
  }
  return {
    request: (url, headers, body, signal) => {
      const { path, pool } = targetOf(url)
      return pool.request({ path, method: "POST", headers, body, signal })
    },
    call: (url, headers, body, done) => {
      const { path, pool } = targetOf(url)
      return bufferedCall(pool, path, headers, body, done)
    }
  }
}

/**
 * An abort signal as undici also takes it, an EventEmitter: an AbortController's
 * EventTarget cost ~20 µs of CPU a call in its listeners' bookkeeping, measured here.
 */
export class CallSignal extends EventEmitter {
  aborted = false
  reason: unknown = undefined
  abort(reason: unknown): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = reason
    this.emit("abort")
  }
}

/**
 * An upstream's answer as undici's `request` gives it: no WHATWG Response (measured here,
 * undici's fetch cost ~400 µs of CPU a call against ~170 µs for `request`, and a Response
 * object most of the difference, in a gateway whose whole budget is under a millisecond).
 */
type Answer = Dispatcher.ResponseData

const header = (answer: Answer) => (name: string): string | undefined => {
  const value = answer.headers[name]
  return Array.isArray(value) ? value.join(", ") : value
}

const isOk = (answer: Answer) => answer.statusCode >= 200 && answer.statusCode < 300

/**
 * A failure raised by JavaScript itself in this process before anything was sent: the
 * openai SDK's JSON.stringify of a body too deep for the stack (RangeError) or holding a
 * value JSON cannot (TypeError). Connection failures always carry a code (undici's
 * UND_ERR_*, the system's ECONNRESET, …) or come wrapped in a TransportFailure.
 */
const thrownBeforeSending = (cause: unknown): boolean =>
  findCode(cause) === undefined && (cause instanceof RangeError || cause instanceof TypeError)

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

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** A deployment's headers for JSON calls: its own (key, version) and the content type. */
export const jsonHeaders = (own: Record<string, string>): Record<string, string> => ({ "content-type": "application/json", ...own })

export interface PostOptions {
  /** The deployment's connections. */
  readonly upstream: Upstream
  readonly url: string
  readonly timeouts: Timeouts
  readonly deadline: CallDeadline
  /** Every header of the call, made once per deployment (see jsonHeaders), not per call. */
  readonly headers: Record<string, string>
  readonly body: unknown
  readonly redact: Redactor
  /** The provider's error body → its human reason. */
  readonly errorMessage: (body: unknown) => string | undefined
}

const send = (options: PostOptions, body: string, signal: CallSignal): Promise<Answer> =>
  options.upstream.request(options.url, options.headers, body, signal)

/** Serialized apart from the call: a body JSON cannot hold must never look like a connection failure. */
const serialize = (body: unknown) => Effect.try({ try: () => JSON.stringify(body), catch: notSent })

/** A non-2xx answer as an UpstreamError carrying the provider's (redacted) reason. */
const failureFrom = (status: number, text: string, header: (name: string) => string | undefined, options: PostOptions): UpstreamError => {
  let reason: string | undefined
  try {
    reason = options.errorMessage(JSON.parse(text))
  } catch {
    reason = undefined
  }
  const retryAfterMs = parseRetryAfter(header)
  return new UpstreamError({
    kind: kindOfStatus(status),
    status,
    message: options.redact(reason ?? (text.slice(0, 500) || `HTTP ${status}`)),
    ...(retryAfterMs === undefined ? {} : { retryAfterMs })
  })
}

const failureOf = async (answer: Answer, options: PostOptions): Promise<UpstreamError> =>
  failureFrom(answer.statusCode, await answer.body.text().catch(() => ""), header(answer), options)

export const totalTimeout = ({ ms, setting }: CallDeadline): UpstreamError =>
  new UpstreamError({ kind: "timeout", message: `no response within ${ms} ms (${setting})` })

export const firstTokenTimeout = ({ ms, setting }: { readonly ms: number; readonly setting: string }): UpstreamError =>
  new UpstreamError({ kind: "timeout", message: `no first token within ${ms} ms (${setting})` })

/**
 * An abort signal that fires at the call's deadline, and for a stream at its first-token
 * deadline until `started` says the first element came: native timers on the call, no
 * fiber. Any failure after a timer fired is reported as the timeout it was.
 */
export const deadlineController = (deadline: CallDeadline) => {
  const signal = new CallSignal()
  let expired: UpstreamError | undefined
  const expire = (error: UpstreamError) => () => {
    expired = error
    signal.abort(ABORTED)
  }
  // Set first: at the same time as the call's own, it is the one that fires, and names itself.
  let first = deadline.firstToken === undefined ? undefined : setTimeout(expire(firstTokenTimeout(deadline.firstToken)), deadline.firstToken.ms)
  const timer = setTimeout(expire(totalTimeout(deadline)), deadline.ms)
  return {
    signal,
    /** The failure to report: the timeout, if that is what ended the call. */
    explain: (error: UpstreamError): UpstreamError => expired ?? error,
    /** The first element is in hand: the first-token deadline no longer applies. */
    started: () => {
      if (first === undefined) return
      clearTimeout(first)
      first = undefined
    },
    close: () => {
      clearTimeout(timer)
      if (first !== undefined) clearTimeout(first)
      signal.abort(ABORTED)
    }
  }
}

/**
 * One reason for every abort: `abort()` without one builds a DOMException, stack trace
 * included, on every call (6 % of a worker's CPU in a profile), and closing a finished
 * call is what every call does. The reason is never shown: the failure that is reported
 * is the timeout, or nothing (the request is gone).
 */
const ABORTED = new DOMException("the upstream call was closed", "AbortError")

const malformedJson = () => new UpstreamError({ kind: "malformed", message: "the upstream answered with malformed JSON" })

/** A whole answer, decoded, as the Exit to resume with: nothing in it throws. */
const exitOf = <A>(
  result: Buffered,
  options: PostOptions,
  explain: (error: UpstreamError) => UpstreamError,
  decode: (json: unknown) => A | UpstreamError
): Exit.Exit<A, UpstreamError> => {
  if (result._tag === "Failed") return Exit.fail(explain(transportError(result.cause, options.redact, options.timeouts)))
  if (result.status < 200 || result.status >= 300) return Exit.fail(explain(failureFrom(result.status, result.text, result.header, options)))
  let json: unknown
  try {
    json = JSON.parse(result.text)
  } catch {
    return Exit.fail(malformedJson())
  }
  const decoded = decode(json)
  return decoded instanceof UpstreamError ? Exit.fail(decoded) : Exit.succeed(decoded)
}

/**
 * POST JSON, read JSON and decode it, within the call's deadline, as one asynchronous
 * step: interrupting it aborts the call. Each Effect step around a call (serialize, send,
 * read, parse, release) cost a scheduler turn or a runtime-flags change, together a fifth
 * of the gateway's CPU per request in a profile.
 */
export const postJson = <A = unknown>(
  options: PostOptions,
  decode: (json: unknown) => A | UpstreamError = (json) => json as A
): Effect.Effect<A, UpstreamError> =>
  Effect.async<A, UpstreamError>((resume) => {
    let body: string
    try {
      body = JSON.stringify(options.body)
    } catch (cause) {
      resume(Exit.fail(notSent(cause)))
      return
    }
    let expired = false
    let over = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const explain = (error: UpstreamError) => (expired ? totalTimeout(options.deadline) : error)
    const abort = options.upstream.call(options.url, options.headers, body, (result) => {
      if (over) return
      over = true
      clearTimeout(timer)
      resume(exitOf(result, options, explain, decode))
    })
    // One native timer per call; a failure after it fired is reported as the timeout it was.
    if (!over) {
      timer = setTimeout(() => {
        expired = true
        abort(ABORTED)
      }, options.deadline.ms)
    }
    return Effect.sync(() => {
      if (over) return
      over = true
      clearTimeout(timer)
      abort(ABORTED)
    })
  })

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
 * POST JSON, read Server-Sent Events, decoded as they come, ended at the call's deadline:
 * the answer as a pull, once the upstream accepted the call. The call lives in the scope:
 * closing it aborts the request (the consumer stopped early, failed or was interrupted).
 *
 * Reading, SSE parsing, decoding and the check for a cut stream are one step per network
 * read: every Stream operator costs on each element and on the first pull, which is
 * what a client waits on before its first token.
 */
export const postSse = <A>(
  options: PostOptions,
  makeDecoder: () => EventDecoder<A>,
  end: StreamEnd<A>
): Effect.Effect<Pull<A, UpstreamError>, UpstreamError, Scope.Scope> =>
  Effect.gen(function*() {
    const deadline = yield* Effect.acquireRelease(
      Effect.sync(() => deadlineController(options.deadline)),
      (d) => Effect.sync(d.close)
    )
    const answer = yield* Effect.flatMap(serialize(options.body), (body) =>
      Effect.tryPromise({
        try: () => send(options, body, deadline.signal),
        catch: (cause) => deadline.explain(transportError(cause, options.redact, options.timeouts))
      }))
    if (!isOk(answer)) return yield* Effect.fail(deadline.explain(yield* Effect.promise(() => failureOf(answer, options))))
    // A connection lost while the body streams is a cut stream, not an unreachable upstream.
    const readFailure = (cause: unknown) => {
      const error = deadline.explain(transportError(cause, options.redact, options.timeouts))
      return error.kind === "connection" ? cutBefore(end) : error
    }
    return eventReader(answer.body, makeDecoder(), end, readFailure, deadline)
  })

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
  deadline: { readonly explain: (error: UpstreamError) => UpstreamError; readonly started: () => void }
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
        : Effect.fail(Option.some(deadline.explain(cutBefore(end))))
    }
    parser.feed(text.decode(result.value, { stream: true }))
    if (failed !== undefined) return Effect.fail(Option.some(failed))
    const elements = out
    out = []
    if (elements.length > 0) deadline.started()
    if (!finished) finished = elements.some(end.isTerminal)
    return Effect.succeed(Chunk.unsafeFromArray(elements))
  })
}
