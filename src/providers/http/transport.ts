/**
 * Upstream HTTP, shared by every adapter: JSON calls (here) and event streams (sse.ts) over
 * a deployment's connections (upstream.ts). undici rather than Node's bundled fetch
 * because its Pool gives each deployment its own keep-alive connections and a real
 * connect timeout; Effect wraps each call so that interruption (client gone, timeout,
 * early stop) aborts the socket, and no retry happens anywhere but in Quorum's router.
 */
import { Effect, Exit } from "effect"
import type { Timeouts } from "../../config/gateway-config"
import type { CallDeadline } from "../provider"
import type { Redactor } from "../redact"
import { kindOfStatus, parseRetryAfter, UpstreamError } from "../upstream-error"
import type { Buffered, Upstream } from "./upstream"

export { makeUpstream, type Upstream } from "./upstream"

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

/** A non-2xx answer as an UpstreamError carrying the provider's (redacted) reason. */
export const failureFrom = (status: number, text: string, header: (name: string) => string | undefined, options: PostOptions): UpstreamError => {
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

export const totalTimeout = ({ ms, setting }: CallDeadline): UpstreamError =>
  new UpstreamError({ kind: "timeout", message: `no response within ${ms} ms (${setting})` })

export const firstTokenTimeout = ({ ms, setting }: { readonly ms: number; readonly setting: string }): UpstreamError =>
  new UpstreamError({ kind: "timeout", message: `no first token within ${ms} ms (${setting})` })

/**
 * One reason for every abort: `abort()` without one builds a DOMException, stack trace
 * included, on every call (6 % of a worker's CPU in a profile), and closing a finished
 * call is what every call does. The reason is never shown: the failure that is reported
 * is the timeout, or nothing (the request is gone).
 */
export const ABORTED = new DOMException("the upstream call was closed", "AbortError")

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

