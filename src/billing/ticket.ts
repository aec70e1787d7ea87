/**
 * One request's owner, from admission to billing: who is calling, what they may use, the
 * limits they set, every upstream attempt made for it (the meter it extends), and its one
 * ledger record. Opened at the edge (http) and provided as CurrentTicket to everything
 * below: the router records attempts into it and reads its limits, consensus admits its
 * fan-out through it and LLM judges' calls are metered into it. Nothing below calls back
 * up into http, and the store runs no closure of anyone's.
 */
import { Effect, Fiber, FiberRef, Option } from "effect"
import { AsyncLocalStorage } from "node:async_hooks"
import { newId } from "../domain/ids"
import { type AdmissionError, SpendStoreError, type Unauthorized } from "./errors"
import type { KeyFacts } from "./keys"
import { Meter } from "./meter"
import type { Spend } from "./spend"
import type { Admission, CostOption } from "./store/store"

/** A request's own limits on what it may wait for and spend (`quorum: {max_latency_ms, max_cost_usd}` or headers). */
export interface RequestLimits {
  readonly max_latency_ms?: number | undefined
  readonly max_cost_usd?: number | undefined
}

/** When a request arrived (wall clock and monotonic): its row and its latency count from here, its upload included. */
export interface Arrival {
  readonly startedAt: number
  readonly t0: number
}

export const arrivedNow = (): Arrival => ({ startedAt: Date.now(), t0: performance.now() })

export class Ticket extends Meter {
  readonly requestId = newId("req")
  readonly startedAt: number
  readonly t0: number
  admission: Admission | undefined = undefined
  /** The caller's key, once identified (undefined before, and for nobody on an open gateway): what routing and policies read. */
  key: KeyFacts | undefined = undefined
  private identified = false
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
    readonly authorization: string | undefined,
    arrival: Arrival = arrivedNow()
  ) {
    super()
    this.startedAt = arrival.startedAt
    this.t0 = arrival.t0
  }

  /**
   * Who is calling, read once per request (from the worker's short cache of key facts):
   * before the content policies and routing, which read the key's policies and tags.
   * An unknown or revoked key is refused here, as admission would refuse it.
   */
  identify(): Effect.Effect<KeyFacts | undefined, Unauthorized | SpendStoreError> {
    return Effect.suspend(() =>
      this.identified
        ? Effect.succeed(this.key)
        : Effect.map(this.spend.identify(this.authorization), (key) => {
          this.key = key
          this.identified = true
          return key
        }))
  }

  /**
   * Admits the request for `models`: the key's model list, rate limits and budget. The
   * cost options (most preferred first) are estimated here, by the request's owner, only
   * for a key that needs them (a budget or a token limit: estimating tokenizes the
   * prompt, which a long prompt does with the event loop let in), and handed to the store
   * as values. A key that gained a limit since its facts were read is asked again, with them.
   */
  admit(models: ReadonlyArray<string>, estimate: Effect.Effect<ReadonlyArray<CostOption>>): Effect.Effect<Admission | undefined, AdmissionError> {
    // Identified as nobody (an open gateway, no Quorum key): the store has nothing to admit,
    // and the request is spared the steps of asking it.
    if (this.identified && this.key === undefined) return Effect.succeed(undefined)
    return Effect.gen(() => this.admitting(models, estimate))
  }

  // A generator method is made once, with the class; a generator function made in admit() would be made per request (README, Development).
  private *admitting(models: ReadonlyArray<string>, estimate: Effect.Effect<ReadonlyArray<CostOption>>) {
    const key = yield* this.identify()
    const admitWith = (options: ReadonlyArray<CostOption> | undefined) => this.spend.admit(key, models, options)
    const admission = yield* admitWith(key?.needsCost === true ? yield* estimate : undefined).pipe(
      Effect.catchTag("CostsNeeded", () => Effect.flatMap(estimate, admitWith)),
      Effect.catchTag("CostsNeeded", () => new SpendStoreError({ message: "admission asked for cost options it was given" }))
    )
    this.admission = admission
    return admission
  }

  /** The models and routes the caller may use (null: any), for a fan-out Quorum picks. */
  allowed(): Effect.Effect<ReadonlyArray<string> | null, Unauthorized | SpendStoreError> {
    return Effect.map(this.identify(), (key) => key?.models ?? null)
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
      // A request refused before admission (a content policy, a bad limit) is still its key's.
      refusedKeyId: this.refusedKeyId ?? this.key?.id,
      key: this.key,
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
 * CurrentTicket read from plain code that a fiber is running (a routing strategy's
 * synchronous plan): undefined outside a fiber or without a ticket.
 */
export const currentTicket = (): Ticket | undefined =>
  Option.getOrUndefined(Option.flatMap(Fiber.getCurrentFiber(), (fiber) => Option.fromNullable(fiber.getFiberRef(CurrentTicket))))

/**
 * The ticket across a Promise boundary: evaluators are plain async functions, so an LLM
 * judge's model calls find their request's ticket here rather than in the FiberRef.
 */
export const ticketStorage = new AsyncLocalStorage<Ticket | undefined>()
