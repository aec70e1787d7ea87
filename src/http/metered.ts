/**
 * The life of a metered request: its Ticket (billing/ticket.ts), opened here and provided
 * to everything below, and exactly one ledger record when it ends: answered, failed, or
 * abandoned by the client (recorded as cancelled, status 499), or broken by a defect (a
 * 500 in OpenAI's shape naming the request id, the cause in the log, never an empty body).
 */
import { Cause, Effect, Either, FiberRef, HashSet, Option } from "effect"
import { type Arrival, CurrentTicket, Ticket } from "../billing/ticket"
import { formatUsd } from "../domain/money"
import type { Spend } from "../billing/spend"
import { type ClientError, errorAnswer, internalError, logDefect } from "./errors"
import type { ErrorBody } from "../protocol/error-body"
import { errorReply, json, type Reply, withHeaders } from "./hot/reply"

export const COST_HEADER = "x-quorum-cost-usd"

/** Who asks (the Authorization header), and when the request arrived where the front door knows it. */
export interface Caller {
  readonly authorization: string | undefined
  readonly arrival?: Arrival | undefined
}

/** OpenAI's error body, as every route answers unless its wire format has its own (Anthropic's). */
const openAIShape = (_status: number, body: ErrorBody): unknown => body

/**
 * The ticket is set in the fiber's references for the rest of the fiber, not for a region
 * (Effect.locally, a dozen runtime steps): a metered request is the whole of its own
 * fiber (see hot/front-door.ts), so nothing after it could read a ticket that is not its.
 * One interruption-proof match then takes every ending: an answer, a failure (its error
 * reply), a defect (a 500) or the client leaving (recorded as 499).
 */
export const metered = <R>(
  spend: Spend,
  endpoint: string,
  caller: Caller,
  handle: (ticket: Ticket) => Effect.Effect<Reply, ClientError, R>,
  errorShape: (status: number, body: ErrorBody) => unknown = openAIShape
): Effect.Effect<Reply, never, R> =>
  Effect.uninterruptibleMask((restore) => {
    const request = new Ticket(spend, endpoint, caller.authorization, caller.arrival)
    const identified = (reply: Reply) => withHeaders(reply, { "x-request-id": request.requestId })
    return Effect.matchCauseEffect(restore(Effect.zipRight(FiberRef.set(CurrentTicket, request), handle(request))), {
      onSuccess: (reply) => Effect.succeed(identified(reply)),
      onFailure: (cause) =>
        // This fiber is the request's: interrupted means its client left, whatever else the cause holds.
        Effect.descriptorWith((fiber) => {
          const toBroken = (defect: Cause.Cause<unknown>) => Effect.map(broken(request, endpoint, defect, errorShape), identified)
          if (HashSet.size(fiber.interruptors) > 0 || Cause.isInterruptedOnly(cause)) {
            request.finish(499, "the client closed the request", true)
            return Effect.failCause(cause as Cause.Cause<never>)
          }
          const failure = Cause.failureOption(cause)
          if (Option.isSome(failure)) return Effect.catchAllCause(Effect.sync(() => identified(failed(request, failure.value, errorShape))), toBroken)
          return Cause.isDie(cause) ? toBroken(cause) : Effect.failCause(cause as Cause.Cause<never>)
        })
    })
  })

/** A failure's reply, in the route's error shape, its cost recorded: attempts billed before the last one failed cost too. */
const failed = (request: Ticket, error: ClientError, errorShape: (status: number, body: ErrorBody) => unknown): Reply => {
  const answer = errorAnswer(error)
  if ("keyId" in error && typeof error.keyId === "string") request.refusedKeyId = error.keyId
  const cost = request.finish(answer.status, answer.body.error.message)
  const reply = errorReply(error, { [COST_HEADER]: formatUsd(cost) })
  return { ...reply, body: errorShape(answer.status, answer.body) }
}

/** A defect's 500, naming the request id; the cause goes to the log. */
const broken = Effect.fnUntraced(function*(request: Ticket, endpoint: string, cause: Cause.Cause<unknown>, errorShape: (status: number, body: ErrorBody) => unknown) {
  yield* logDefect(endpoint, request.requestId, cause)
  // Recording the request may be what broke: the client gets its 500 all the same.
  const cost = yield* Effect.either(Effect.try(() => request.finish(500, "internal error")))
  if (Either.isLeft(cost)) yield* logDefect(endpoint, request.requestId, Cause.die(cost.left.error))
  return json(errorShape(500, internalError(request.requestId)), Either.isRight(cost) ? { [COST_HEADER]: formatUsd(cost.right) } : {}, 500)
})
