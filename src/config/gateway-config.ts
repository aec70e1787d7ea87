/**
 * The resolved configuration every other part reads: defaults applied, presets merged,
 * keys read from the environment, cross-references checked. Built once at start-up.
 */
import type { RuleSpec } from "./route-rules"
import type { AdaptiveSettings } from "./adaptive"
import type { CacheSettings } from "./cache"
import type { TelemetrySettings } from "./telemetry"
import { Context, type Redacted } from "effect"
import type { RequestLimits } from "../protocol/limits"
import type { DatabaseSetting } from "./database"
import type { ModelPrice } from "../domain/money"
import type { DeclaredEvaluatorFile, PresetFile, ProviderName } from "./schema"
import type { Policy } from "../policy/policy"

export interface Timeouts {
  /** TCP (and TLS) connection set-up. */
  readonly connectMs: number
  /** Until a stream's first chunk. */
  readonly firstTokenMs: number
  /** Longest silence between two stream chunks. */
  readonly idleMs: number
  /** One attempt, start to last byte, at most. */
  readonly totalMs: number
  /**
   * The slowest output a healthy upstream writes: a call that may write N tokens is
   * bounded by first_token_ms + N / this (under total_ms), so a hung non-stream call,
   * which shows no sign of life until its answer, is given up in seconds when its output
   * is bounded, and a long generation still has the time it needs.
   */
  readonly minTokensPerSecond: number
}

export interface RetryPolicy {
  /** Attempts per deployment, the first included. */
  readonly maxAttempts: number
  readonly baseDelayMs: number
  readonly maxDelayMs: number
  /**
   * The request's wall-clock budget before its answer: after it no new attempt or wait
   * begins, and a running attempt is cut (a stream only until its first chunk; after
   * that it is the client's). Set in `defaults` only.
   */
  readonly budgetMs: number
}

export interface CircuitPolicy {
  readonly failureThreshold: number
  readonly cooldownMs: number
}

/** How a simulated model words its answers: "391", "The answer is 391.", "17 × 23 = 391, so the answer is 391.". */
export type SimStyle = "terse" | "sentence" | "explained"

export interface SimSpec {
  readonly latencyMs: number
  /** Share of attempts that fail with a 500, at random: transient, a retry may succeed. */
  readonly errorRate: number
  /** Fixed answers, one drawn at random per reply; undefined: answers worked out from the prompt. */
  readonly answers: ReadonlyArray<string> | undefined
  /** Share of worked-out answers that are wrong; drawn per prompt, so a prompt gets the same mistake every time. */
  readonly mistakeRate: number
  readonly style: SimStyle
  readonly tokensPerSecond: number
}

export interface Deployment {
  /** The name clients use. */
  readonly id: string
  readonly provider: ProviderName
  /** The name of the adapter that speaks to it (providers/registry.ts). */
  readonly adapter: string
  /** The upstream's own name for the model. */
  readonly upstreamModel: string
  readonly baseUrl: string | undefined
  readonly apiKey: Redacted.Redacted<string> | undefined
  /** From config, else the catalog; undefined when neither knows the model. */
  readonly price: ModelPrice | undefined
  /** The model's output ceiling, when known: the worst case a budget reserves without max_tokens. */
  readonly maxOutputTokens: number | undefined
  /** Providers that require max_tokens (Anthropic) get this when the caller set none. */
  readonly maxTokensDefault: number
  /** Connections a worker may open to this deployment (server.max_upstream_connections). */
  readonly maxConnections: number
  readonly timeouts: Timeouts
  readonly retry: RetryPolicy
  readonly sim: SimSpec | undefined
  /** Consensus vote weight (from `weight`, else log-odds of `accuracy`, else 1). */
  readonly voteWeight: number
}

export interface RouteTarget {
  readonly deployment: string
  readonly weight: number
}

export interface Route {
  readonly id: string
  /** How its targets are ordered for a request (routing/strategies/registry.ts). */
  /** A name of routing/strategies/registry.ts (the loader refuses others). */
  readonly strategy: string
  readonly targets: ReadonlyArray<RouteTarget>
  /** conditional: its rules, checked at load. */
  readonly rules?: ReadonlyArray<RuleSpec>
  /** adaptive: its weights, exploration bound and memory, defaults applied. */
  readonly adaptive?: AdaptiveSettings
  /** Its own response cache, in place of the gateway's. */
  readonly cache?: CacheSettings
}

export interface ConsensusSettings {
  readonly defaultFanout: number
  readonly maxFanout: number
  readonly minAgreement: number
  readonly timeoutMs: number
  readonly evaluatorTimeoutMs: number
  readonly defaultOutputTokens: number
  readonly evaluatorDirs: ReadonlyArray<string>
  /** By id; requested as `model: "consensus/<id>"`. */
  readonly presets: ReadonlyMap<string, PresetFile>
  readonly declaredEvaluators: ReadonlyArray<DeclaredEvaluatorFile>
  /** A cascade wave not settled within this long starts the next one. */
  readonly hedgeMs: number
  readonly learning: LearningSettings
}

export interface LearningSettings {
  /** Labels a task needs before its learned policy replaces the config's weights. */
  readonly minLabels: number
  /** Share of requests run with every model (`mode: "full"`). */
  readonly explore: number
  /** Outcomes older than this are deleted (feedback on them answers 404). */
  readonly retentionDays: number
}

export interface AuthSettings {
  /** Undefined until start-up knows the address: open on loopback, keys otherwise. */
  readonly mode: "open" | "keys" | undefined
  readonly adminKey: Redacted.Redacted<string> | undefined
  readonly adminKeyEnv: string
}

export interface SpendSettings {
  readonly database: DatabaseSetting
  /** Whether requests and attempts are recorded (settlements of keyed requests always are). */
  readonly ledger: boolean
  readonly reservationTtlMs: number
  readonly flushMs: number
  readonly defaultOutputTokens: number
}

export type ConfigSource =
  | { readonly kind: "file"; readonly path: string }
  /** The usual models of the providers whose key variables (`keys`) are set. */
  | { readonly kind: "env"; readonly keys: ReadonlyArray<string> }
  /** `keysWithoutModels`: key variables that were set, of providers with no usual models (OpenRouter). */
  | { readonly kind: "demo"; readonly keysWithoutModels?: ReadonlyArray<string> }

export interface ResolvedConfig {
  /** Where the config came from, for the start-up log. */
  readonly source: ConfigSource
  readonly maxBodyBytes: number
  /** The gateway's content policies, compiled, in the order the config lists them. */
  readonly policies: ReadonlyArray<Policy>
  /** The gateway's response cache (a route's own replaces it); undefined: nothing is cached. */
  readonly cache: CacheSettings | undefined
  /** Traces: where to, how many, whether prompts ride along. */
  readonly telemetry: TelemetrySettings
  /** server.max_in_flight: hot-route requests a worker serves at once before it sheds load. */
  readonly maxInFlight: number
  /** server.limits: bounds on a request body's shape. */
  readonly limits: RequestLimits
  readonly retry: RetryPolicy
  readonly circuit: CircuitPolicy
  readonly deployments: ReadonlyMap<string, Deployment>
  readonly routes: ReadonlyMap<string, Route>
  readonly consensus: ConsensusSettings
  readonly auth: AuthSettings
  readonly spend: SpendSettings
  /** QUORUM_REDIS_URL: replicas share circuit states and the response cache through it. */
  readonly redisUrl: Redacted.Redacted<string> | undefined
  /** Every provider key in use, so that no error or log can echo one. */
  readonly secrets: ReadonlyArray<string>
}

export class GatewayConfig extends Context.Tag("quorum/GatewayConfig")<GatewayConfig, ResolvedConfig>() {}

export const DEFAULT_TIMEOUTS: Timeouts = {
  connectMs: 5_000,
  firstTokenMs: 30_000,
  idleMs: 30_000,
  totalMs: 600_000,
  minTokensPerSecond: 20
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 3,
  baseDelayMs: 200,
  maxDelayMs: 5_000,
  budgetMs: 300_000
}

export const DEFAULT_CIRCUIT: CircuitPolicy = { failureThreshold: 5, cooldownMs: 30_000 }

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024

/**
 * Measured: 2,000 concurrent requests held a worker at about 1 GB; 512 keep it within a
 * few hundred MB while serving far more than one worker's CPU can start per second.
 */
export const DEFAULT_MAX_IN_FLIGHT = 512

/** Enough for any one worker's share of a provider's rate limits; past it calls queue rather than open sockets without bound. */
export const DEFAULT_MAX_UPSTREAM_CONNECTIONS = 256

/** Model names the consensus engine answers to. */
export const isConsensusName = (name: string): boolean => name === "consensus" || name.startsWith("consensus/")
