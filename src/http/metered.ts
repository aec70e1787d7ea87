/**
 * The life of a metered request: an id, a meter the router records each upstream
 * attempt into, and exactly one ledger record when it ends: answered, failed, or
 * abandoned by the client (recorded as cancelled, status 499), or broken by a defect (a
 * 500 in OpenAI's shape naming the request id, the cause in the log, never an empty body).
 */
import { Cause, Effect, Either } from "effect"
import { newId } from "../domain/ids"
import { CurrentMeter, Meter } from "../billing/meter"
import { formatUsd } from "../domain/money"
import type { Spend } from "../billing/spend"
import type { Admission } from "../billing/store/store"
import { type ClientError, errorAnswer, internalError, logDefect } from "./errors"
import type { ErrorBody } from "../protocol/error-body"
import { errorReply, json, type Reply, withHeaders } from "./hot/reply"

export const COST_HEADER = "x-quorum-cost-usd"

export class RequestSpend {
  readonly requestId = newId("req")
  readonly meter = new Meter()
  readonly startedAt = Date.now()
  readonly t0 = performance.now()
  admission: Admission | undefined = undefined
  refusedKeyId: string | undefined = undefined
  model: string | undefined = undefined
  stream = false
  private cost: number | undefined = undefined

  constructor(private readonly spend: Spend, readonly endpoint: string) {}

  /** Records the request; the first call wins, and every call returns its cost in micro-dollars. */
  finish(status: number, error?: string, cancelled = false): number {
    this.cost ??= this.spend.finish({
      requestId: this.requestId,
      endpoint: this.endpoint,
      model: this.model,
      stream: this.stream,
      startedAt: this.startedAt,
      t0: this.t0,
      meter: this.meter,
      admission: this.admission,
      refusedKeyId: this.refusedKeyId,
      status,
      error,
      cancelled
    })
    return this.cost
  }
}

/** OpenAI's error body, as every route answers unless its wire format has its own (Anthropic's). */
const openAIShape = (_status: number, body: ErrorBody): unknown => body

export const metered = <R>(
  spend: Spend,
  endpoint: string,
  handle: (request: RequestSpend) => Effect.Effect<Reply, ClientError, R>,
  errorShape: (status: number, body: ErrorBody) => unknown = openAIShape
): Effect.Effect<Reply, never, R> =>
  Effect.suspend(() => {
    const request = new RequestSpend(spend, endpoint)
    return handle(request).pipe(
      Effect.locally(CurrentMeter, request.meter),
      Effect.catchAll((error) => {
        const answer = errorAnswer(error)
        if ("keyId" in error && typeof error.keyId === "string") request.refusedKeyId = error.keyId
        // A failure can cost too: attempts that were billed before the last one failed.
        const cost = request.finish(answer.status, answer.body.error.message)
        const reply = errorReply(error, { [COST_HEADER]: formatUsd(cost) })
        return Effect.succeed({ ...reply, body: errorShape(answer.status, answer.body) })
      }),
      Effect.catchAllCause((cause) => {
        if (!Cause.isDie(cause)) return Effect.failCause(cause)
        return Effect.gen(function*() {
          yield* logDefect(endpoint, request.requestId, cause)
          // Recording the request may be what broke: the client gets its 500 all the same.
          const cost = yield* Effect.either(Effect.try(() => request.finish(500, "internal error")))
          if (Either.isLeft(cost)) yield* logDefect(endpoint, request.requestId, Cause.die(cost.left.error))
          return json(errorShape(500, internalError(request.requestId)), Either.isRight(cost) ? { [COST_HEADER]: formatUsd(cost.right) } : {}, 500)
        })
      }),
      Effect.onInterrupt(() => Effect.sync(() => request.finish(499, "the client closed the request", true))),
      Effect.map((reply) => withHeaders(reply, { "x-request-id": request.requestId }))
    )
  })
