/**
 * The life of a metered request: its Ticket (billing/ticket.ts), opened here and provided
 * to everything below, and exactly one ledger record when it ends: answered, failed, or
 * abandoned by the client (recorded as cancelled, status 499), or broken by a defect (a
 * 500 in OpenAI's shape naming the request id, the cause in the log, never an empty body).
 */
import { Cause, Effect, Either } from "effect"
import { CurrentTicket, Ticket } from "../billing/ticket"
import { formatUsd } from "../domain/money"
import type { Spend } from "../billing/spend"
import { type ClientError, errorAnswer, internalError, logDefect } from "./errors"
import type { ErrorBody } from "../protocol/error-body"
import { errorReply, json, type Reply, withHeaders } from "./hot/reply"

export const COST_HEADER = "x-quorum-cost-usd"

/** OpenAI's error body, as every route answers unless its wire format has its own (Anthropic's). */
const openAIShape = (_status: number, body: ErrorBody): unknown => body

export const metered = <R>(
  spend: Spend,
  endpoint: string,
  authorization: string | undefined,
  handle: (ticket: Ticket) => Effect.Effect<Reply, ClientError, R>,
  errorShape: (status: number, body: ErrorBody) => unknown = openAIShape
): Effect.Effect<Reply, never, R> =>
  Effect.suspend(() => {
    const request = new Ticket(spend, endpoint, authorization)
    return handle(request).pipe(
      Effect.locally(CurrentTicket, request),
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
