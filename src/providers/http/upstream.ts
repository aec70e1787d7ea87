/**
 * A deployment's connections and the one way Quorum calls through them: undici's
 * dispatch on a keep-alive Pool per origin, asked by path. undici's top-level
 * `request(url, {dispatcher})` parses the URL and finds the origin's pool on every call
 * (~25 µs of CPU, what a proxy's whole call costs three times), and its Readable body and
 * async resource cost ~20 µs more a call than a dispatch handler (bench:floor); JSON
 * answers and event streams are both read by handlers here.
 */
import { Pool } from "undici"
import type { Timeouts } from "../../config/gateway-config"

/** What a call's answer is told as it comes: undici's dispatch handler, reduced to what Quorum reads. */
export interface CallHandler {
  /** The final status and headers (informational 1xx answers are not passed on); `resume` restarts a paused socket. */
  readonly onHeaders: (status: number, header: (name: string) => string | undefined, resume: () => void) => void
  /** A piece of the body; false pauses the socket until `resume` is called. */
  readonly onData: (chunk: Buffer) => boolean
  readonly onComplete: () => void
  /** The call failed (connection, timeout, abort), before or during the body. */
  readonly onError: (cause: unknown) => void
}

export interface Upstream {
  /** Sends a POST; the answer goes to `handler`. Returns the call's abort. */
  readonly dispatch: (url: string, headers: Record<string, string>, body: string, handler: CallHandler) => (reason: Error) => void
  /** A call whose whole answer is read into memory, reported to `done` once; returns the call's abort. */
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

/**
 * One call, told to `handler` exactly once as completed or failed. undici hands out a
 * call's abort only once the call is written to a connection: a call aborted while it
 * waits for one (the pool's connections all busy, or a slow connect) fails at once here,
 * so a deadline moves on to the next target instead of waiting for a connection first;
 * the call itself is dropped when its turn comes.
 */
const dispatchOn = (pool: Pool, path: string, headers: Record<string, string>, body: string, handler: CallHandler) => {
  let abortCall: ((reason?: Error) => void) | undefined
  let abortedWith: Error | undefined
  let settled = false
  const fail = (cause: unknown) => {
    if (settled) return
    settled = true
    handler.onError(cause)
  }
  pool.dispatch({ path, method: "POST", headers, body }, {
    onConnect: (abort) => {
      abortCall = abort
      if (abortedWith !== undefined) abort(abortedWith)
    },
    onHeaders: (status, raw, resume) => {
      // An informational (1xx) answer comes before the real one.
      if (status >= 200 && !settled) handler.onHeaders(status, rawHeader(raw), resume)
      return true
    },
    onData: (chunk) => (settled ? true : handler.onData(chunk)),
    onComplete: () => {
      if (settled) return
      settled = true
      handler.onComplete()
    },
    onError: fail
  })
  return (reason: Error) => {
    abortedWith = reason
    if (abortCall !== undefined) abortCall(reason)
    else fail(reason)
  }
}

/** The handler of a call read whole. */
const buffering = (done: (result: Buffered) => void): CallHandler => {
  let status = 0
  let header: (name: string) => string | undefined = () => undefined
  const chunks: Array<Buffer> = []
  return {
    onHeaders: (code, read) => {
      status = code
      header = read
    },
    onData: (chunk) => {
      chunks.push(chunk)
      return true
    },
    onComplete: () => done({ _tag: "Answer", status, header, text: Buffer.concat(chunks).toString("utf8") }),
    onError: (cause) => done({ _tag: "Failed", cause })
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
  const dispatch: Upstream["dispatch"] = (url, headers, body, handler) => {
    const { path, pool } = targetOf(url)
    return dispatchOn(pool, path, headers, body, handler)
  }
  return {
    dispatch,
    call: (url, headers, body, done) => dispatch(url, headers, body, buffering(done))
  }
}
