/**
 * The money side of a request: who is calling (a virtual key, or nobody on an open
 * gateway: its facts, read by the key's hash and kept a moment per worker), whether they
 * may (models, rate limits, budget, reserved atomically), and,
 * once the request is over, what it cost: ledger rows for the request and each upstream
 * attempt, and the settlement of its reservation, handed to the ledger's writer.
 */
import { Effect, Either } from "effect"
import { GatewayConfig } from "../config/gateway-config"
import { type AdmissionError, type CostsNeeded, type SpendStoreError, Unauthorized } from "./errors"
import { dayOf, hashKey, KEY_PREFIX, type KeyFacts, periodOf } from "./keys"
import { Ledger } from "./ledger"
import type { Meter } from "./meter"
import { costMicros } from "../domain/money"
import { type Admission, type AttemptRow, type CostOption, SpendStore } from "./store/store"
import { revokedKey, unknownKey } from "./store/refusals"
import { Telemetry } from "../telemetry/telemetry"

export interface Finished {
  readonly requestId: string
  readonly endpoint: string
  readonly model: string | undefined
  readonly stream: boolean
  /** Epoch ms and performance.now() at the request's start. */
  readonly startedAt: number
  readonly t0: number
  readonly meter: Meter
  readonly admission: Admission | undefined
  /** The key of a request refused by its limits (no admission, but known). */
  readonly refusedKeyId: string | undefined
  /** The caller's key as identified, when it was (before the policies). */
  readonly key: KeyFacts | undefined
  /** The HTTP status answered (499 when the client left first). */
  readonly status: number
  readonly error: string | undefined
  readonly cancelled: boolean
}

/**
 * What a request refused before admission cost its key: calls made for it before the
 * refusal (an `llm` content check's judge) are charged to the key's spend like any other,
 * with no reservation to release. Nothing to settle when they cost nothing.
 */
const refusedCharge = (done: Finished, cost: number) =>
  done.key === undefined || cost === 0
    ? undefined
    : { keyId: done.key.id, period: periodOf(done.key.budgetPeriod, done.startedAt), reservation: undefined, tokenRefund: 0 }

/** The token of an `Authorization: Bearer <token>` header. */
export const bearer = (authorization: string | undefined): string | undefined => {
  if (authorization === undefined) return undefined
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization)
  return match?.[1]
}

const missingKey = (secret: string | undefined) =>
  new Unauthorized({
    message: secret === undefined
      ? "You didn't provide an API key. Send a Quorum key in an Authorization header (Bearer qk-...)."
      : "Incorrect API key provided: Quorum keys start with qk-."
  })

/**
 * How long a worker trusts a key's facts before reading them again: short, so that an
 * update made on another worker or replica reaches routing and policies within a second
 * or so, and long enough that a busy key costs one read a second, not one per request.
 * Admission reads the key itself, so a revocation is never late there.
 */
export const KEY_FACTS_TTL_MS = 1_000
/** Enough for every key a gateway serves at once; past it the cache starts over rather than grow. */
const KEY_FACTS_MAX = 10_000

/** Key facts as last read, per key hash; unknown keys are not kept (a key created elsewhere is usable at once). */
export class KeyFactsCache {
  private readonly entries = new Map<string, { readonly facts: KeyFacts; readonly until: number }>()
  /** Moves on at each forget: a read begun before it must not put back what it forgot. */
  generation = 0

  get(hash: string, now: number): KeyFacts | undefined {
    const entry = this.entries.get(hash)
    if (entry === undefined) return undefined
    if (entry.until > now) return entry.facts
    this.entries.delete(hash)
    return undefined
  }

  /** Keeps facts read since `generation` began; a read that overlapped a forget is used once, not kept. */
  set(hash: string, facts: KeyFacts, now: number, generation: number): void {
    if (generation !== this.generation) return
    if (this.entries.size >= KEY_FACTS_MAX) this.entries.clear()
    this.entries.set(hash, { facts, until: now + KEY_FACTS_TTL_MS })
  }

  forget(hash?: string): void {
    this.generation++
    if (hash === undefined) this.entries.clear()
    else this.entries.delete(hash)
  }
}

export class Spend extends Effect.Service<Spend>()("quorum/Spend", {
  effect: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const store = yield* SpendStore
    const ledger = yield* Ledger
    const telemetry = yield* Telemetry
    const open = config.auth.mode !== "keys"
    const known = new KeyFactsCache()

    /**
     * The Quorum key the header carries; undefined for nobody on an open gateway, Unauthorized
     * where a key is required. A plain value: every request asks, most of them with no key.
     */
    const secretOf = (authorization: string | undefined): Either.Either<string | undefined, Unauthorized> => {
      const secret = bearer(authorization)
      if (secret !== undefined && secret.startsWith(KEY_PREFIX)) return Either.right(secret)
      // On an open gateway a request without a Quorum key is nobody's (an OpenAI SDK must send some key; it is ignored).
      return open ? Either.right(undefined) : Either.left(missingKey(secret))
    }

    /** A key's facts, from this worker's cache or one read; unknown and revoked keys are refused as admission refuses them. */
    const factsOf = (secret: string): Effect.Effect<KeyFacts, Unauthorized | SpendStoreError> => {
      const hash = hashKey(secret)
      const now = Date.now()
      const cached = known.get(hash, now)
      const generation = known.generation
      const facts = cached !== undefined ? Effect.succeed(cached) : Effect.tap(store.keyFacts(hash), (read) => {
        if (read !== undefined) known.set(hash, read, now, generation)
      })
      return Effect.flatMap(facts, (read) =>
        read === undefined ? Effect.fail(unknownKey()) : read.revoked ? Effect.fail(revokedKey(read.prefix)) : Effect.succeed(read))
    }

    /** Who is calling: their key's facts, or undefined for nobody (an open gateway, no Quorum key). */
    const identify = (authorization: string | undefined): Effect.Effect<KeyFacts | undefined, Unauthorized | SpendStoreError> => {
      const secret = secretOf(authorization)
      if (Either.isLeft(secret)) return Effect.fail(secret.left)
      return secret.right === undefined ? Effect.succeed(undefined) : factsOf(secret.right)
    }

    /**
     * Admission of the key `identify` found for a request's models, with its cost options
     * as values (undefined when the key's facts say it needs none); nobody's request has
     * nothing to admit. The store always checks the key itself (its facts may be up to
     * KEY_FACTS_TTL_MS old); a key that needs options it was not given fails with
     * CostsNeeded, and its cached facts, stale, are dropped.
     */
    const admit = (
      key: KeyFacts | undefined,
      models: ReadonlyArray<string>,
      options: ReadonlyArray<CostOption> | undefined
    ): Effect.Effect<Admission | undefined, AdmissionError | CostsNeeded> => {
      if (key === undefined) return Effect.succeed(undefined)
      return store.admit({ hash: key.hash, models, options, ttlMs: config.spend.reservationTtlMs, now: Date.now() }).pipe(
        Effect.tapErrorTag("CostsNeeded", () => Effect.sync(() => known.forget(key.hash)))
      )
    }

    /**
     * Who is calling, for requests that reserve nothing (a model list): the models their
     * key may use, null for any (no key on an open gateway, or a key without a list), or
     * Unauthorized as admission would answer.
     */
    const caller = (authorization: string | undefined): Effect.Effect<ReadonlyArray<string> | null, Unauthorized | SpendStoreError> =>
      Effect.map(identify(authorization), (facts) => facts?.models ?? null)

    /** After an admin change on this worker: its requests see the change at once (other workers within KEY_FACTS_TTL_MS). */
    const forgetKeys = (): void => known.forget()

    /** Queues the request's ledger rows and settlement; returns its cost in micro-dollars. */
    const finish = (done: Finished): number => {
      const keyId = done.admission?.keyId ?? done.refusedKeyId ?? null
      const consensusId = done.meter.consensusId ?? null
      const attempts: Array<AttemptRow> = done.meter.attempts.map((a, seq) => {
        // A stream still open here was abandoned with its request.
        if (a.status === "open") a.end("cancelled")
        const { estimated, usage } = a.tokens()
        return {
          request_id: done.requestId,
          seq,
          key_id: keyId,
          consensus_id: consensusId,
          model: a.deployment.id,
          provider: a.deployment.provider,
          upstream_model: a.deployment.upstreamModel,
          status: a.status as AttemptRow["status"],
          error_kind: a.errorKind ?? null,
          http_status: a.httpStatus ?? null,
          prompt_tokens: usage.prompt_tokens,
          cached_tokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
          completion_tokens: usage.completion_tokens,
          estimated: estimated ? 1 : 0,
          cost_micros: a.deployment.price === undefined ? 0 : costMicros(a.deployment.price, usage),
          latency_ms: a.latencyMs,
          started_at: a.startedAt,
          day: dayOf(a.startedAt)
        }
      })
      const sum = (f: (a: AttemptRow) => number) => attempts.reduce((total, a) => total + f(a), 0)
      const cost = sum((a) => a.cost_micros)
      const tokens = sum((a) => a.prompt_tokens + a.completion_tokens)
      telemetry.requestFinished({
        endpoint: done.endpoint,
        model: done.model ?? null,
        keyId,
        status: done.status,
        latencyMs: performance.now() - done.t0,
        attempts: attempts.map((a) => ({ model: a.model, provider: a.provider, status: a.status, errorKind: a.error_kind, promptTokens: a.prompt_tokens, completionTokens: a.completion_tokens, costMicros: a.cost_micros }))
      })
      const refused = done.admission === undefined ? refusedCharge(done, cost) : undefined
      if (!config.spend.ledger && done.admission === undefined && refused === undefined) return cost
      ledger.record({
        costMicros: cost,
        request: !config.spend.ledger ? undefined : {
          id: done.requestId,
          key_id: keyId,
          endpoint: done.endpoint,
          model: done.model ?? null,
          consensus_id: consensusId,
          status: done.status,
          error: done.error ?? null,
          stream: done.stream ? 1 : 0,
          cancelled: done.cancelled ? 1 : 0,
          attempts: attempts.length,
          prompt_tokens: sum((a) => a.prompt_tokens),
          completion_tokens: sum((a) => a.completion_tokens),
          cost_micros: cost,
          latency_ms: Math.round((performance.now() - done.t0) * 10) / 10,
          started_at: done.startedAt,
          day: dayOf(done.startedAt)
        },
        attempts: config.spend.ledger ? attempts : [],
        settle: done.admission === undefined
          ? refused
          : {
            keyId: done.admission.keyId,
            period: done.admission.period,
            reservation: done.admission.reservation,
            tokenRefund: Math.max(0, done.admission.tokensCharged - tokens)
          }
      })
      return cost
    }

    return { identify, admit, caller, forgetKeys, finish, status: ledger.status }
  })
}) {}
