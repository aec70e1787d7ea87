/**
 * The front door of the HTTP server: the hot routes (chat completions, consensus) are
 * served here, straight from node:http's `request` event, and everything else goes on to
 * the platform's server (admin, models, documentation). The platform's request object,
 * router and response cost ~150 µs of CPU a request, most of what a gateway may add.
 *
 * Load shedding is here too: past `server.max_in_flight` hot requests on this worker, a
 * new one is refused at once with a 503 in OpenAI's error shape (code `server_overloaded`,
 * `retry-after`), before its body is read or anything is allocated for it, so a flood
 * never grows the worker's memory or queues clients without bound. Admin, health and
 * documentation routes are never shed: an operator can always see what is going on.
 */
import { Cause, Context, Effect, Exit, type Fiber, FiberId, FiberRef, Scope } from "effect"
import type { IncomingMessage, Server, ServerResponse } from "node:http"
import { newId } from "../../domain/ids"
import { internalError, logDefect } from "../errors"
import { arrivedNow } from "../../billing/ticket"
import { collectBody, type ReceivedBody } from "../read-body"
import type { Reply } from "./reply"
import { writeReply } from "./write-reply"

/**
 * A hot route, given its request and the body read for it: the request's scope holds its
 * upstream calls until the answer is written or the client leaves.
 */
export type HotHandler = (incoming: IncomingMessage, body: ReceivedBody) => Effect.Effect<Reply, never, Scope.Scope>

export interface HotRoutes {
  /** POST routes by path. */
  readonly routes: ReadonlyMap<string, HotHandler>
  /** server.max_body_bytes: a body past it is not buffered, and its route answers 413. */
  readonly maxBodyBytes: number
  /** Runs a request's fiber on the gateway's prebuilt runtime. */
  readonly run: (effect: Effect.Effect<void>) => Fiber.RuntimeFiber<void>
  /** Wraps a request, answer written, in its span, when traces are on. */
  readonly traced?: (route: string, effect: Effect.Effect<void>) => Effect.Effect<void>
}

export interface Shedding {
  /** Hot-route requests being served now. */
  readonly inFlight: () => number
  /** Requests refused since start. */
  readonly shed: () => number
}

const pathOf = (url: string): string => {
  const query = url.indexOf("?")
  return query === -1 ? url : url.slice(0, query)
}

const refusal = (max: number) =>
  JSON.stringify({
    error: {
      message: `This gateway worker is serving its limit of ${max} requests (server.max_in_flight); retry shortly.`,
      type: "server_error",
      param: null,
      code: "server_overloaded"
    }
  })

/** A defect while writing (a bug): logged, and the client gets a 500 if nothing was sent yet, else a cut connection. */
const answeringDefect = (response: ServerResponse, route: string) => (cause: Cause.Cause<never>) =>
  Effect.suspend(() => {
    if (Cause.isInterruptedOnly(cause)) return Effect.void
    const requestId = newId("req")
    if (!response.headersSent) {
      response.writeHead(500, { "content-type": "application/json", "x-request-id": requestId }).end(JSON.stringify(internalError(requestId)))
    } else response.destroy()
    return logDefect(route, requestId, cause)
  })

/**
 * The request's scope, in its fiber's context for the whole of the fiber's life. Not
 * Effect.scoped, which provides it for a region and puts the context back after (a
 * dozen runtime steps and two copies of the fiber's references): the fiber is this
 * request's alone and ends with it, so there is nothing to put back.
 */
export const inRequestScope = (effect: Effect.Effect<void, never, Scope.Scope>, defect: (cause: Cause.Cause<never>) => Effect.Effect<void>): Effect.Effect<void> =>
  Effect.flatMap(Scope.make(), (scope) =>
    Effect.zipRight(
      FiberRef.update(FiberRef.currentContext, (context) => Context.add(context, Scope.Scope, scope)),
      Effect.uninterruptibleMask((restore) =>
        // The Scope the effect needs is in the context from here on (the update above).
        Effect.matchCauseEffect(restore(effect as Effect.Effect<void>), {
          onSuccess: () => closing(scope, Exit.void, defect),
          onFailure: (cause) => closing(scope, Exit.failCause(cause), defect)
        })
      )
    ))

/** The scope closed; a failure, or a finalizer that broke, then goes to `defect` (the two together if both). */
const closing = (scope: Scope.CloseableScope, exit: Exit.Exit<void>, defect: (cause: Cause.Cause<never>) => Effect.Effect<void>): Effect.Effect<void> =>
  Effect.flatMap(Effect.exit(Scope.close(scope, exit)), (closed) => {
    const failed = Exit.isFailure(exit) ? exit.cause : undefined
    if (Exit.isSuccess(closed)) return failed === undefined ? Effect.void : defect(failed)
    return defect(failed === undefined ? closed.cause : Cause.sequential(failed, closed.cause))
  })

const serve = (hot: HotRoutes, route: string, handler: HotHandler, request: IncomingMessage, response: ServerResponse, body: ReceivedBody): Fiber.RuntimeFiber<void> => {
  const served = inRequestScope(Effect.flatMap(handler(request, body), (reply) => writeReply(response, reply)), answeringDefect(response, route))
  return hot.run(hot.traced === undefined ? served : hot.traced(route, served))
}

/**
 * The body is read before the request's fiber starts, with plain callbacks: bodies come
 * whole in a packet or two, and the fiber then runs to the upstream call without waiting
 * (an asynchronous step fewer, ~10 Effect steps and a suspended fiber's resumption fewer).
 * A client that leaves before its body is whole gets its fiber all the same, told so: its
 * request is recorded as any whose client left (499), with nothing asked of an upstream.
 */
const admitted = (hot: HotRoutes, route: string, handler: HotHandler, request: IncomingMessage, response: ServerResponse, onClose: () => void): void => {
  const arrival = arrivedNow()
  let fiber: Fiber.RuntimeFiber<void> | undefined
  const stopReading = collectBody(request, hot.maxBodyBytes, (text) => {
    // A read that ends because the connection broke is the client leaving: the close below
    // (which also stops the reading, so nothing comes here after it) says so.
    if (!request.socket?.destroyed) fiber = serve(hot, route, handler, request, response, { text, arrival })
  })
  response.once("close", () => {
    onClose()
    if (fiber === undefined) {
      stopReading()
      fiber = serve(hot, route, handler, request, response, { text: undefined, arrival })
      return
    }
    // The client left before the whole answer was written: stop everything done for it.
    if (!response.writableFinished) fiber.unsafeInterruptAsFork(FiberId.none)
  })
}

/** Takes over the server's request event; returns the shedding counters. */
export const openFrontDoor = (server: Server, maxInFlight: number, hot: HotRoutes): Shedding => {
  let inFlight = 0
  let shed = 0
  const body = refusal(maxInFlight)
  const emit = server.emit.bind(server) as (event: string, ...args: Array<unknown>) => boolean
  server.emit = ((event: string, ...args: Array<unknown>): boolean => {
    if (event !== "request") return emit(event, ...args)
    const request = args[0] as IncomingMessage
    const response = args[1] as ServerResponse
    const route = request.method === "POST" ? pathOf(request.url ?? "") : undefined
    const handler = route === undefined ? undefined : hot.routes.get(route)
    if (route === undefined || handler === undefined) return emit(event, ...args)
    if (inFlight >= maxInFlight) {
      shed++
      // The body is not read: closing the connection after the answer discards it.
      response.writeHead(503, { "content-type": "application/json", "retry-after": "1", connection: "close" }).end(body)
      return true
    }
    inFlight++
    admitted(hot, route, handler, request, response, () => inFlight--)
    return true
  }) as typeof server.emit
  return { inFlight: () => inFlight, shed: () => shed }
}
