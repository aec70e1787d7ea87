/**
 * Turns a model name into a response that survived what it could: retries with backoff
 * on the same deployment for transient failures, then the route's next target, with
 * circuit breakers skipping deployments that keep failing and one wall-clock budget
 * over all of it. Streams fall back only until their first chunk is in hand; after
 * that they are committed to the client and a failure ends them with an error.
 */
import { Cause, Chunk, Effect, Either, ExecutionStrategy, Exit, FiberRef, Option, Scope } from "effect"
import { type Deployment, GatewayConfig } from "../config/gateway-config"
import type { ChatCompletionRequest } from "../protocol/chat-request"
import type { ChatCompletion, ChatCompletionChunk } from "../protocol/chat-response"
import type { EmbeddingRequest, EmbeddingResponse } from "../protocol/embeddings"
import type { Pull } from "../domain/pull"
import type { CallDeadline, ProviderClient } from "../providers/provider"
import { allowsFallback, amend, countsAsFailure, isRetryable, UpstreamError } from "../providers/upstream-error"
import { Upstreams } from "../providers/upstreams"
import type { AttemptRecord } from "../billing/meter"
import { CurrentTicket, type Ticket } from "../billing/ticket"
import { backoffDelay } from "./backoff"
import { CircuitBreakers } from "./circuit-breaker"
import { AllCoolingDown, OutsideLimits, UnknownModel } from "./errors"
import { describeExclusions, withinLimits } from "./constraints"
import { type HealthView, LiveHealth } from "./health"
import { answerDeadline, callDeadline, withinBudget } from "./deadline"
import { costOn, planTargets } from "./plan"
import { promptTokensOf } from "../protocol/tokens"
import { Telemetry } from "../telemetry/telemetry"
import { Tracing } from "../telemetry/tracing-tag"
import { BeliefsSnapshot, LearnedBeliefs } from "./learned/view"

export type RouteError = UpstreamError | UnknownModel | AllCoolingDown | OutsideLimits

export interface Routed<A> {
  readonly value: A
  /** The deployment that answered. */
  readonly deployment: Deployment
  /** Upstream calls made, the successful one included. */
  readonly attempts: number
}

type Kind = "complete" | "stream" | "embed"

/** How a call made for a request is routed. */
export interface CallOptions {
  /**
   * false: the request's own limits (max_latency_ms, max_cost_usd) do not apply. A content
   * check's judge is the gateway's, not the client's: a limit the client sets must neither
   * exclude the judge (blocking by mistake) nor let a client skip it (with on_error: pass).
   */
  readonly requestLimits?: boolean
}

/** A call to one deployment, given its client, the meter's record, the call's deadline and what is left of the request's budget. */
type Attempt<A, R> = (client: ProviderClient, deployment: Deployment, record: AttemptRecord | undefined, deadline: CallDeadline, budgetLeftMs: number) => Effect.Effect<A, UpstreamError, R>

export class Router extends Effect.Service<Router>()("quorum/Router", {
  effect: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const upstreams = yield* Upstreams
    const breakers = yield* CircuitBreakers
    const telemetry = yield* Effect.serviceOption(Telemetry)
    const tracing = Option.getOrUndefined(yield* Effect.serviceOption(Tracing))
    // What this worker's learned routes believe; a gateway that learns nothing plans with the priors.
    const beliefs = Option.getOrElse(yield* Effect.serviceOption(LearnedBeliefs), () => new BeliefsSnapshot())

    // This worker's recent latencies and failures per deployment, for strategies and the dashboard.
    const health = new LiveHealth()

    /** The deployments to try, in order: the route's strategy, then the request's own limits (cheapest first). */
    const targetsOf = (kind: Kind, request: ChatCompletionRequest, ticket: Ticket | undefined, options: CallOptions): Either.Either<ReadonlyArray<string>, UnknownModel | OutsideLimits> => {
      const model = request.model
      const planned = planTargets(config, model, Math.random, { request, health, beliefs })
      if (planned === undefined) return Either.left(new UnknownModel({ model, known: [...config.routes.keys(), ...config.deployments.keys()] }))
      const limits = options.requestLimits === false ? undefined : ticket?.limits
      if (limits === undefined) return Either.right(planned)
      const fitting = withinLimits(planned, limits, { health, stream: kind === "stream", costMicros: costOn(config, request, () => promptTokensOf(request)) })
      return Either.mapLeft(fitting, (excluded) => new OutsideLimits({ model, reasons: describeExclusions(excluded) }))
    }

    /**
     * One call to one deployment, as its Exit: the meter's record, the span, live health
     * and the circuit's probe are kept here. `attempt` records its own success in the
     * record it is given (a stream only when it ends); failures and interruptions are
     * recorded here.
     */
    const callOnce = <A, R>(
      kind: Kind,
      request: ChatCompletionRequest,
      deployment: Deployment,
      admission: "closed" | "probe",
      ticket: Ticket | undefined,
      budgetLeft: number,
      attempt: Attempt<A, R>
    ) => {
      const id = deployment.id
      const record = ticket?.begin(deployment, request)
      const bound = kind === "embed" ? answerDeadline(deployment) : callDeadline(deployment, request)
      // A non-stream call is cut when the budget runs out; a stream only until its first chunk.
      const made = attempt(upstreams.client(id), deployment, record, kind === "stream" ? bound : withinBudget(bound, budgetLeft), budgetLeft)
      // A stream's span ends with its first chunk: after that the stream is the client's.
      // One interruption handler for all three: each is an uninterruptible region a call.
      const call = Effect.onInterrupt(tracing === undefined ? made : tracing.attempt(deployment, request, made), () =>
        Effect.sync(() => {
          record?.end("cancelled")
          if (admission === "probe") breakers.abandoned(id)
          health.abandoned(id)
        }))
      health.started(id)
      const t0 = performance.now()
      return Effect.map(Effect.exit(call), (exit) => {
        // A stream's attempt succeeds with its first chunk: that is its time to first token.
        const elapsed = performance.now() - t0
        if (Exit.isSuccess(exit)) {
          health.finished(id, kind === "stream" ? { ok: true, firstTokenMs: elapsed } : { ok: true, latencyMs: elapsed })
          if (kind === "stream" && Option.isSome(telemetry)) telemetry.value.firstToken(id, elapsed)
          breakers.succeeded(id)
        } else if (Option.exists(Cause.failureOption(exit.cause), (e) => e.kind !== "not_sent")) health.finished(id, { ok: false })
        // An interruption was counted by the handler above.
        else if (!Cause.isInterruptedOnly(exit.cause)) health.abandoned(id)
        return { exit, record }
      })
    }

    /**
     * After a failed attempt, what next: `fail` (the error is the caller's), `next` (the
     * route's next target), or a retry of this deployment after `retryInMs`.
     */
    const afterFailure = (error: UpstreamError, n: number, deployment: Deployment, deadline: number): "fail" | "next" | { readonly retryInMs: number } => {
      if (!allowsFallback(error)) return "fail"
      if (!isRetryable(error) || n === deployment.retry.maxAttempts) return "next"
      // A provider that asks for a longer pause than we would wait gets the pause: try elsewhere.
      if (error.retryAfterMs !== undefined && error.retryAfterMs > deployment.retry.maxDelayMs) return "next"
      const delay = backoffDelay(n, deployment.retry, error.retryAfterMs)
      return Date.now() + delay >= deadline ? "next" : { retryInMs: delay }
    }

    const run: <A, R>(kind: Kind, request: ChatCompletionRequest, attempt: Attempt<A, R>, options?: CallOptions) => Effect.Effect<Routed<A>, RouteError, R> =
      Effect.fnUntraced(function*<A, R>(kind: Kind, request: ChatCompletionRequest, attempt: Attempt<A, R>, options: CallOptions = {}) {
        const ticket = yield* FiberRef.get(CurrentTicket)
        const targets = yield* targetsOf(kind, request, ticket, options)
        const deadline = Date.now() + config.retry.budgetMs
        let last: UpstreamError | undefined
        let reopensAt = Number.POSITIVE_INFINITY
        let attempts = 0

        for (const id of targets) {
          const deployment = config.deployments.get(id)
          if (deployment === undefined) continue
          for (let n = 1; n <= deployment.retry.maxAttempts; n++) {
            const admission = breakers.admit(id, Date.now())
            if (admission === "open") {
              reopensAt = Math.min(reopensAt, breakers.reopensAt(id))
              break
            }
            attempts++
            const { exit, record } = yield* callOnce(kind, request, deployment, admission, ticket, deadline - Date.now(), attempt)
            if (Exit.isSuccess(exit)) return { value: exit.value, deployment, attempts }
            const failure = Cause.failureOption(exit.cause)
            if (Option.isNone(failure) || failure.value.kind === "not_sent") {
              // A defect, an interruption, or a request that never left: ours, not the
              // upstream's. Nothing is counted; a probe gives its turn back.
              if (admission === "probe") breakers.abandoned(id)
              if (Option.isNone(failure)) return yield* Effect.failCause(exit.cause as Cause.Cause<never>)
              // Never sent, so it cost nothing; the client gets a 500 naming the request.
              record?.end("error", { error: failure.value })
              return yield* Effect.die(failure.value)
            }
            const error = amend(failure.value, { deployment: id })
            record?.end("error", { error })
            last = error
            // Only failures are logged: the hot path stays quiet. Messages are already redacted.
            yield* Effect.logWarning(`upstream ${id} failed (attempt ${n}, ${error.kind}${error.status === undefined ? "" : ` ${error.status}`}): ${error.message}`)
            if (countsAsFailure(error)) breakers.failed(id, Date.now())
            else if (admission === "probe") breakers.abandoned(id)
            const next = afterFailure(error, n, deployment, deadline)
            if (next === "fail") return yield* error
            if (next === "next") break
            yield* Effect.sleep(next.retryInMs)
          }
          if (Date.now() >= deadline) break
        }
        if (last !== undefined) return yield* last
        return yield* new AllCoolingDown({ model: request.model, retryAfterMs: Math.max(0, reopensAt - Date.now()) })
      })

    /**
     * Opens the stream and waits for its first chunk. The attempt's resources live in a
     * scope of their own under the request's: closed as soon as the stream ends or fails,
     * and with the request's scope at the latest (the client left, the consumer stopped).
     */
    const openStream = Effect.fnUntraced(function*(
      client: ProviderClient,
      deployment: Deployment,
      request: ChatCompletionRequest,
      parent: Scope.Scope,
      record: AttemptRecord | undefined,
      deadline: CallDeadline,
      budgetLeftMs: number
    ) {
      const scope = yield* Scope.fork(parent, ExecutionStrategy.sequential)
      // The first-token deadline is the transport's, on the call's own timer (see CallDeadline).
      const firstToken = firstTokenDeadline(deployment.timeouts.firstTokenMs, deadline, budgetLeftMs)
      const first = yield* firstChunkOf(client.stream(request, { ...deadline, firstToken }), scope).pipe(
        Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit)))
      )
      // Neither ended nor failed when its scope closes: the client left, or the consumer stopped.
      yield* Scope.addFinalizer(scope, Effect.sync(() => record?.end("cancelled")))
      return restOf(first.pull, first.firstChunk, deployment.id, record, Scope.close(scope, Exit.void))
    })

    /**
     * The stream after its first chunk, as one pull: the chunk in hand first, then the
     * upstream's, each observed by the meter, the end and any failure recorded. One step
     * rather than a Stream operator for each: they cost on every chunk.
     */
    const restOf = (
      pull: Pull<ChatCompletionChunk, UpstreamError>,
      firstChunk: Chunk.Chunk<ChatCompletionChunk>,
      id: string,
      record: AttemptRecord | undefined,
      close: Effect.Effect<void>
    ): Pull<ChatCompletionChunk, UpstreamError> => {
      let pending: Chunk.Chunk<ChatCompletionChunk> | undefined = firstChunk
      const observed = (chunk: Chunk.Chunk<ChatCompletionChunk>) => {
        if (record !== undefined) for (const c of chunk) record.observe(c)
        return Effect.succeed(chunk)
      }
      // The upstream's call is released as soon as the stream is over, not with the request.
      const ended = (error: Option.Option<UpstreamError>) => {
        if (Option.isNone(error)) {
          record?.end("ok")
          return Effect.zipRight(close, Effect.fail(error))
        }
        if (countsAsFailure(error.value)) breakers.failed(id, Date.now())
        const amended = amend(error.value, { deployment: id })
        record?.end("error", { error: amended })
        return Effect.zipRight(close, Effect.fail(Option.some(amended)))
      }
      const next = Effect.matchEffect(pull, { onSuccess: observed, onFailure: ended })
      return Effect.suspend(() => {
        if (pending === undefined) return next
        const chunk = pending
        pending = undefined
        return observed(chunk)
      })
    }

    return {
      health: health as HealthView,
      circuit: (id: string) => breakers.state(id, Date.now()),
      complete: (request: ChatCompletionRequest, options?: CallOptions): Effect.Effect<Routed<ChatCompletion>, RouteError> =>
        run("complete", request, (client, _, record, deadline) =>
          record === undefined
            ? client.complete(request, deadline)
            : Effect.tap(client.complete(request, deadline), (completion) => Effect.sync(() => record.end("ok", { usage: completion.usage }))), options),

      /**
       * Embeddings from the first target that serves them. `metered` is the input as the
       * meter counts it when the provider reports no usage (a chat request of its texts).
       */
      embed: (request: EmbeddingRequest, metered: ChatCompletionRequest): Effect.Effect<Routed<EmbeddingResponse>, RouteError> =>
        run("embed", metered, (client, deployment, record, deadline) => {
          if (client.embed === undefined) {
            return Effect.fail(new UpstreamError({ kind: "unsupported", param: "model", message: `${deployment.provider} does not serve embeddings` }))
          }
          return Effect.tap(client.embed(request, deadline), (answer) =>
            Effect.sync(() => record?.end("ok", { usage: { prompt_tokens: answer.usage.prompt_tokens, completion_tokens: 0, total_tokens: answer.usage.total_tokens } })))
        }),

      /**
       * A stream whose first chunk has arrived, as a pull (see domain/pull.ts): the hot
       * path's form. Its upstream call stays open until the pull ends or fails, or the
       * request's scope closes (the client left). `Stream.repeatEffectChunkOption`
       * makes a Stream of it where one is wanted.
       */
      open: (request: ChatCompletionRequest): Effect.Effect<Routed<Pull<ChatCompletionChunk, UpstreamError>>, RouteError, Scope.Scope> =>
        Effect.flatMap(Effect.scope, (parent) =>
          run("stream", request, (client, deployment, record, deadline, budgetLeftMs) =>
            openStream(client, deployment, request, parent, record, deadline, budgetLeftMs)))
    }
  }),
  dependencies: [Upstreams.Default, CircuitBreakers.Default]
}) {}

/** The first chunk's deadline: first_token_ms, unless the call's deadline or the request's budget ends sooner. */
const firstTokenDeadline = (firstTokenMs: number, call: CallDeadline, budgetLeftMs: number): CallDeadline => {
  const first = withinBudget({ ms: firstTokenMs, setting: "first_token_ms" }, budgetLeftMs)
  return call.ms < first.ms ? call : first
}

/** The stream opened in `scope`, and its first chunk. */
const firstChunkOf = Effect.fnUntraced(function*<A>(
  opened: Effect.Effect<Pull<A, UpstreamError>, UpstreamError, Scope.Scope>,
  scope: Scope.Scope
) {
  const pull = yield* Scope.extend(opened, scope)
  const firstChunk = yield* pullNonEmpty(pull)
  return { pull, firstChunk }
})

/** Pulls until a non-empty chunk; an upstream that ends before any chunk was cut short. */
const pullNonEmpty = <A>(
  pull: Effect.Effect<Chunk.Chunk<A>, Option.Option<UpstreamError>>
): Effect.Effect<Chunk.Chunk<A>, UpstreamError> =>
  pull.pipe(
    Effect.mapError((error) =>
      Option.getOrElse(error, () => new UpstreamError({ kind: "stream_cut", message: "the upstream closed the stream before its first chunk" }))
    ),
    Effect.flatMap((chunk) => (Chunk.isEmpty(chunk) ? pullNonEmpty(pull) : Effect.succeed(chunk)))
  )
