/**
 * One request's owner, from admission to billing: who is calling, what they may use, the
 * limits they set, every upstream attempt made for it (the meter it extends), and its one
 * ledger record. Opened at the edge (http) and provided as CurrentTicket to everything
 * below: the router records attempts into it and reads its limits, consensus admits its
 * fan-out through it and LLM judges' calls are metered into it. Nothing below calls back
 * up into http, and the store runs no closure of anyone's.
 */
import { Effect, FiberRef } from "effect"
import { AsyncLocalStorage } from "node:async_hooks"
import { newId } from "../domain/ids"
import type { AdmissionError, SpendStoreError, Unauthorized } from "./errors"
import { Meter } from "./meter"
import type { Spend } from "./spend"
import type { Admission, CostOption } from "./store/store"

/** A request's own limits on what it may wait for and spend (`quorum: {max_latency_ms, max_cost_usd}` or headers). */
export interface RequestLimits {
  readonly max_latency_ms?: number | undefined
  readonly max_cost_usd?: number | undefined
}

export class Ticket extends Meter {
  readonly requestId = newId("req")
  readonly startedAt = Date.now()
  readonly t0 = performance.now()
  admission: Admission | undefined = undefined
  /** The key of a request refused by its limits (no admission, but known). */
  refusedKeyId: string | undefined = undefined
  /** The model or route asked for, as the ledger names it. */
  model: string | undefined = undefined
  stream = false
  /** Set where the request is read; the router keeps to them. */
  limits: RequestLimits | undefined = undefined
  private cost: number | undefined = undefined

  constructor(
    private readonly spend: Spend,
    readonly endpoint: string,
    /** The request's Authorization header: a Quorum key, or nothing on an open gateway. */
    readonly authorization: string | undefined
  ) {
    super()
  }

  /** Admits the request for `models`: the key's model list, rate limits and budget (`options`, most preferred first). */
  admit(models: ReadonlyArray<string>, options: () => ReadonlyArray<CostOption>): Effect.Effect<Admission | undefined, AdmissionError> {
    return Effect.tap(this.spend.admit(this.authorization, models, options), (admission) =>
      Effect.sync(() => {
        this.admission = admission
      }))
  }

  /** The models and routes the caller may use (null: any), for a fan-out Quorum picks. */
  allowed(): Effect.Effect<ReadonlyArray<string> | null, Unauthorized | SpendStoreError> {
    return this.spend.caller(this.authorization)
  }

  /** Records the request; the first call wins, and every call returns its cost in micro-dollars. */
  finish(status: number, error?: string, cancelled = false): number {
    this.cost ??= this.spend.finish({
      requestId: this.requestId,
      endpoint: this.endpoint,
      model: this.model,
      stream: this.stream,
      startedAt: this.startedAt,
      t0: this.t0,
      meter: this,
      admission: this.admission,
      refusedKeyId: this.refusedKeyId,
      status,
      error,
      cancelled
    })
    return this.cost
  }
}

/** The ticket of the request the current fiber works for; forked fibers (a consensus fan-out) inherit it. */
export const CurrentTicket = FiberRef.unsafeMake<Ticket | undefined>(undefined)

/**
 * The ticket across a Promise boundary: evaluators are plain async functions, so an LLM
 * judge's model calls find their request's ticket here rather than in the FiberRef.
 */
export const ticketStorage = new AsyncLocalStorage<Ticket | undefined>()
