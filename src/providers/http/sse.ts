/**
 * A provider's event stream, read by a dispatch handler (upstream.ts): the answer's bytes
 * are parsed as Server-Sent Events and decoded as they arrive, and the stream is read as
 * a pull (domain/pull.ts) that takes what has been decoded, or waits for it. No Readable,
 * async iterator or Stream between the socket and the router: each cost on every chunk
 * and on the first one, which is what a client waits on before its first token.
 *
 * The call's deadline and first-token deadline are native timers on the call; silence on
 * the socket is undici's bodyTimeout (idle_ms). A consumer slower than the upstream
 * pauses the socket (the handler's backpressure), so chunks never pile up in memory.
 */
import { Chunk, Effect, Exit, Option, Scope } from "effect"
import { createParser, type EventSourceMessage, type EventSourceParser } from "eventsource-parser"
import { StringDecoder } from "node:string_decoder"
import type { Pull } from "../../domain/pull"
import { UpstreamError } from "../upstream-error"
import { ABORTED, failureFrom, firstTokenTimeout, notSent, type PostOptions, totalTimeout, transportError } from "./transport"

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

const cutBefore = ({ expected }: { readonly expected: string }) =>
  new UpstreamError({ kind: "stream_cut", message: `the upstream closed the stream before ${expected}` })

type Read<A> = Exit.Exit<Chunk.Chunk<A>, Option.Option<UpstreamError>>

/**
 * POST JSON and read its event stream: the answer as a pull once the upstream accepted the
 * call (a 2xx with its headers), or the failure it answered. The call lives in the scope:
 * closing it aborts the request (the consumer stopped early, failed or was interrupted).
 */
export const postSse = <A>(
  options: PostOptions,
  makeDecoder: () => EventDecoder<A>,
  end: StreamEnd<A>
): Effect.Effect<Pull<A, UpstreamError>, UpstreamError, Scope.Scope> =>
  Effect.flatMap(Effect.scope, (scope) => {
    let body: string
    try {
      body = JSON.stringify(options.body)
    } catch (cause) {
      return Effect.fail(notSent(cause))
    }
    const call = new SseCall(options, makeDecoder(), end)
    // The finalizer is in place before the call starts: an interruption in between cannot leave it running.
    return Scope.addFinalizer(scope, Effect.sync(() => call.close())).pipe(
      Effect.zipRight(Effect.suspend(() => {
        call.start(body)
        return call.opened
      }))
    )
  })

class SseCall<A> {
  private abort: (reason: Error) => void = () => {}
  private resumeSocket: () => void = () => {}
  private timers: Array<ReturnType<typeof setTimeout>> = []
  private firstToken: ReturnType<typeof setTimeout> | undefined
  /** The deadline that fired, if one did: what any failure after it is reported as. */
  private expired: UpstreamError | undefined
  /** Until the answer's headers (or its failure) are in: who waits for them, or what they were if nobody waited yet. */
  private opening = true
  private onOpen: ((exit: Exit.Exit<Pull<A, UpstreamError>, UpstreamError>) => void) | undefined
  private openedWith: Exit.Exit<Pull<A, UpstreamError>, UpstreamError> | undefined
  private status = 0
  private header: (name: string) => string | undefined = () => undefined
  /** A failed answer's body, read whole for its reason. */
  private failedBody: Array<Buffer> = []
  private failedBytes = 0
  private readonly parser: EventSourceParser
  /** Keeps a multi-byte character split across two pieces of the body for the next one. */
  private readonly text = new StringDecoder("utf8")
  /** Decoded and not yet pulled. */
  private out: Array<A> = []
  /** The decoder's failure, the connection's, or the stream's end. */
  private failed: UpstreamError | undefined
  private ended = false
  /** Whether the provider's terminal element went by: an end before it is a cut stream. */
  private terminal = false
  /** The transport is done with the call (completed, failed, or never opened): nothing left to abort. */
  private done = false
  private paused = false
  private waiting: ((read: Read<A>) => void) | undefined

  constructor(private readonly options: PostOptions, decode: EventDecoder<A>, private readonly end: StreamEnd<A>) {
    this.parser = createParser({
      onEvent: (event) => {
        if (this.failed === undefined) this.failed = decode(event, this.out)
      }
    })
  }

  readonly opened: Effect.Effect<Pull<A, UpstreamError>, UpstreamError> = Effect.async((resume) => {
    if (this.openedWith !== undefined) return resume(this.openedWith)
    this.onOpen = resume
  })

  /** The next elements, the end (`Option.none()`) or the failure; waits for the socket only when nothing is decoded yet. */
  readonly pull: Pull<A, UpstreamError> = Effect.suspend(() => {
    const ready = this.take()
    if (ready !== undefined) return ready
    return Effect.async<Chunk.Chunk<A>, Option.Option<UpstreamError>>((resume) => {
      this.waiting = resume
      this.unpause()
      return Effect.sync(() => {
        this.waiting = undefined
      })
    })
  })

  start(body: string): void {
    const { deadline } = this.options
    // Set first: at the same time as the call's own, it is the one that fires, and names itself.
    const first = deadline.firstToken
    if (first !== undefined) this.firstToken = this.expireAt(first.ms, () => firstTokenTimeout(first))
    this.timers.push(this.expireAt(deadline.ms, () => totalTimeout(deadline)))
    this.abort = this.options.upstream.dispatch(this.options.url, this.options.headers, body, {
      onHeaders: (status, header, resume) => {
        this.status = status
        this.header = header
        this.resumeSocket = resume
        if (this.ok()) this.open(Exit.succeed(this.pull))
      },
      onData: (chunk) => (this.ok() ? this.read(chunk) : this.keepFailed(chunk)),
      onComplete: () => {
        this.done = true
        if (!this.ok()) {
          const text = Buffer.concat(this.failedBody).toString("utf8")
          return this.open(Exit.fail(this.explain(failureFrom(this.status, text, this.header, this.options))))
        }
        this.ended = true
        this.deliver()
      },
      onError: (cause) => {
        const error = this.explain(transportError(cause, this.options.redact, this.options.timeouts))
        this.done = true
        if (this.opening) return this.open(Exit.fail(error))
        // A connection lost while the body streams is a cut stream, not an unreachable upstream.
        this.failed ??= error.kind === "connection" ? cutBefore(this.end) : error
        this.deliver()
      }
    })
  }

  /** Ends the call: its timers, and the request if it is still running. */
  close(): void {
    for (const timer of this.timers) clearTimeout(timer)
    this.started()
    if (this.done) return
    this.done = true
    this.abort(ABORTED)
  }

  /** A failed answer's body, kept up to 64 KB for its reason: an upstream's error page is no reason to hold megabytes. */
  private keepFailed(chunk: Buffer): boolean {
    if (this.failedBytes < 65_536) {
      this.failedBody.push(chunk)
      this.failedBytes += chunk.length
    }
    return true
  }

  private ok(): boolean {
    return this.status >= 200 && this.status < 300
  }

  /** A deadline's timer; its error is made only if it fires (an Error's stack costs ~20 µs). */
  private expireAt(ms: number, error: () => UpstreamError) {
    return setTimeout(() => {
      this.expired = error()
      this.abort(ABORTED)
    }, ms)
  }

  private explain(error: UpstreamError): UpstreamError {
    return this.expired ?? error
  }

  private open(exit: Exit.Exit<Pull<A, UpstreamError>, UpstreamError>): void {
    if (!this.opening) return
    this.opening = false
    const onOpen = this.onOpen
    this.onOpen = undefined
    if (onOpen === undefined) this.openedWith = exit
    else onOpen(exit)
  }

  /** The first element is in hand: the first-token deadline no longer applies. */
  private started(): void {
    if (this.firstToken === undefined) return
    clearTimeout(this.firstToken)
    this.firstToken = undefined
  }

  /** A piece of the body, parsed and decoded; false (pause) while nobody takes what it decoded. */
  private read(chunk: Buffer): boolean {
    this.parser.feed(this.text.write(chunk))
    if (this.out.length > 0) this.started()
    this.deliver()
    this.paused = this.out.length > 0
    return !this.paused
  }

  private unpause(): void {
    if (!this.paused) return
    this.paused = false
    this.resumeSocket()
  }

  private deliver(): void {
    if (this.waiting === undefined) return
    const read = this.take()
    if (read === undefined) return
    const waiting = this.waiting
    this.waiting = undefined
    waiting(read)
  }

  /**
   * What a pull gets now: the elements decoded (those before a failure included), then
   * the failure or the end; undefined: wait for the socket.
   */
  private take(): Read<A> | undefined {
    if (this.out.length > 0) {
      const elements = this.out
      this.out = []
      if (!this.terminal) this.terminal = elements.some(this.end.isTerminal)
      this.unpause()
      return Exit.succeed(Chunk.unsafeFromArray(elements))
    }
    if (this.failed !== undefined) {
      return Exit.fail(Option.some(this.failed))
    }
    if (!this.ended) return undefined
    return this.terminal ? Exit.fail(Option.none()) : Exit.fail(Option.some(this.explain(cutBefore(this.end))))
  }
}
