/**
 * The config file's shape (YAML, snake_case as operators write it). Decoding reports the
 * exact key that is wrong, so a typo stops start-up with a message instead of a surprise.
 */
import { RuleSpec } from "./route-rules"
import { AdaptiveSettings } from "./adaptive"
import { CacheSettings } from "./cache"
import { TelemetrySettings } from "./telemetry"
import { Schema } from "effect"
import { PolicySpec } from "../policy/spec"

const PositiveMs = Schema.Int.pipe(Schema.positive())
const NonEmpty = Schema.String.pipe(Schema.minLength(1))

/** One of the adapters' providers (providers/registry.ts), checked when the config is resolved. */
export const ProviderName = Schema.String.pipe(Schema.minLength(1))
export type ProviderName = typeof ProviderName.Type

const Rate = Schema.Number.pipe(Schema.nonNegative(), Schema.lessThanOrEqualTo(100_000))

/** USD per 1M tokens. */
const RatesFile = Schema.Struct({
  input: Rate,
  output: Rate,
  /** Cache-read input tokens; `input` when not set. */
  cached_input: Schema.optional(Rate)
})

export const PriceFile = Schema.Struct({
  ...RatesFile.fields,
  /** Long-context prices: the whole call is billed at a tier once its prompt passes `above_input_tokens`. */
  tiers: Schema.optional(Schema.Array(Schema.Struct({
    ...RatesFile.fields,
    above_input_tokens: Schema.Int.pipe(Schema.positive())
  })))
})

export const TimeoutsFile = Schema.Struct({
  connect_ms: Schema.optional(PositiveMs),
  first_token_ms: Schema.optional(PositiveMs),
  idle_ms: Schema.optional(PositiveMs),
  total_ms: Schema.optional(PositiveMs),
  min_tokens_per_second: Schema.optional(Schema.Number.pipe(Schema.positive()))
})

/** Per model: how it is retried. */
export const ModelRetryFile = Schema.Struct({
  max_attempts: Schema.optional(Schema.Int.pipe(Schema.between(1, 10))),
  base_delay_ms: Schema.optional(Schema.Int.pipe(Schema.nonNegative())),
  max_delay_ms: Schema.optional(Schema.Int.pipe(Schema.nonNegative()))
})

/** In `defaults` also the budget, which spans every model a request tries. */
export const RetryFile = Schema.Struct({
  ...ModelRetryFile.fields,
  budget_ms: Schema.optional(PositiveMs)
})

export const CircuitFile = Schema.Struct({
  failure_threshold: Schema.optional(Schema.Int.pipe(Schema.positive())),
  cooldown_ms: Schema.optional(PositiveMs)
})

/**
 * A simulated model. With `answers` it says exactly those; without, it works its answers
 * out from the prompt (arithmetic, a few facts, JSON for response_format, tool calls),
 * in its `style`, wrong `mistake_rate` of the time.
 */
export const SimFile = Schema.Struct({
  latency_ms: Schema.optional(Schema.Int.pipe(Schema.nonNegative())),
  error_rate: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
  answers: Schema.optional(Schema.Array(Schema.String).pipe(Schema.minItems(1))),
  mistake_rate: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
  style: Schema.optional(Schema.Literal("terse", "sentence", "explained")),
  tokens_per_second: Schema.optional(Schema.Number.pipe(Schema.positive()))
})

export const ModelFile = Schema.Struct({
  id: NonEmpty,
  provider: ProviderName,
  model: Schema.optional(NonEmpty),
  base_url: Schema.optional(Schema.String.pipe(Schema.pattern(/^https?:\/\/[^\s]+$/, {
    message: () => "expected an http:// or https:// URL"
  }))),
  api_key_env: Schema.optional(Schema.String.pipe(Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]*$/, {
    message: () => "expected the name of an environment variable"
  }))),
  price: Schema.optional(PriceFile),
  max_tokens_default: Schema.optional(Schema.Int.pipe(Schema.positive())),
  /** The most output a call can produce; bounds the budget reserved for a request without max_tokens. */
  max_output_tokens: Schema.optional(Schema.Int.pipe(Schema.positive())),
  timeouts: Schema.optional(TimeoutsFile),
  retry: Schema.optional(ModelRetryFile),
  sim: Schema.optional(SimFile),
  /** Consensus: a vote weight, or a measured accuracy to derive one (log-odds). */
  weight: Schema.optional(Schema.Number.pipe(Schema.nonNegative())),
  accuracy: Schema.optional(Schema.Number.pipe(Schema.between(0, 1)))
})
export type ModelFile = typeof ModelFile.Type

export const RouteTarget = Schema.Union(
  NonEmpty,
  Schema.Struct({ model: NonEmpty, weight: Schema.optional(Schema.Number.pipe(Schema.positive())) })
)

export const RouteFile = Schema.Struct({
  id: NonEmpty,
  /** A strategy of routing/strategies/registry.ts, checked when the config is resolved. */
  strategy: Schema.optional(Schema.String.pipe(Schema.minLength(1))),
  targets: Schema.Array(RouteTarget).pipe(Schema.minItems(1)),
  /** conditional: rules on the request, the first that matches decides (src/routing/strategies/conditional.ts). */
  rules: Schema.optional(Schema.Array(RuleSpec).pipe(Schema.minItems(1))),
  /** adaptive: what a good outcome is, and how much to explore (src/routing/learned/settings.ts). */
  adaptive: Schema.optional(AdaptiveSettings),
  /** This route's response cache, in place of the gateway's. */
  cache: Schema.optional(CacheSettings)
})
export type RouteFile = typeof RouteFile.Type

/** A named consensus set-up, used as `model: "consensus/<id>"`. */
export const PresetFile = Schema.Struct({
  id: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._-]+$/, { message: () => "expected letters, digits, '.', '_' or '-'" })),
  models: Schema.optional(Schema.Array(NonEmpty).pipe(Schema.minItems(1))),
  fanout: Schema.optional(Schema.Int.pipe(Schema.positive())),
  strategy: Schema.optional(Schema.Literal("vote", "similarity", "score")),
  evaluators: Schema.optional(Schema.Array(Schema.Struct({
    name: NonEmpty,
    weight: Schema.optional(Schema.Number.pipe(Schema.nonNegative())),
    options: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
  }))),
  min_agreement: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
  timeout_ms: Schema.optional(PositiveMs)
})
export type PresetFile = typeof PresetFile.Type

/** Evaluators declared in config, without code. */
export const DeclaredEvaluatorFile = Schema.Union(
  Schema.Struct({
    name: NonEmpty,
    type: Schema.Literal("regex"),
    pattern: NonEmpty,
    flags: Schema.optional(Schema.String.pipe(Schema.pattern(/^[dimsuy]*$/, { message: () => "expected regex flags among d, i, m, s, u, y" }))),
    gate: Schema.optional(Schema.Boolean),
    description: Schema.optional(Schema.String)
  }),
  Schema.Struct({
    name: NonEmpty,
    type: Schema.Literal("llm_judge"),
    /** The model or route that grades. */
    model: NonEmpty,
    /** What to grade the answers on. */
    instructions: NonEmpty,
    gate: Schema.optional(Schema.Boolean),
    description: Schema.optional(Schema.String)
  })
)
export type DeclaredEvaluatorFile = typeof DeclaredEvaluatorFile.Type

export const ConsensusFile = Schema.Struct({
  default_fanout: Schema.optional(Schema.Int.pipe(Schema.between(1, 32))),
  max_fanout: Schema.optional(Schema.Int.pipe(Schema.between(1, 32))),
  min_agreement: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
  timeout_ms: Schema.optional(PositiveMs),
  evaluator_timeout_ms: Schema.optional(PositiveMs),
  /** Output tokens assumed per call when pricing a fan-out whose request sets no max_tokens. */
  default_output_tokens: Schema.optional(Schema.Int.pipe(Schema.positive())),
  /** Folders of evaluator modules, besides the built-in evaluators/. */
  evaluator_dirs: Schema.optional(Schema.Array(NonEmpty)),
  presets: Schema.optional(Schema.Array(PresetFile)),
  evaluators: Schema.optional(Schema.Array(DeclaredEvaluatorFile)),
  /** A cascade wave not settled within this long starts the next wave. */
  hedge_ms: Schema.optional(PositiveMs),
  learning: Schema.optional(Schema.Struct({
    /** Labels a task needs before its weights are learned instead of taken from config. */
    min_labels: Schema.optional(Schema.Int.pipe(Schema.positive())),
    /** Share of requests that run every model (`mode: "full"`), so that feedback keeps arriving for all of them. */
    explore: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
    /** How long consensus outcomes are kept for feedback and learning. */
    retention_days: Schema.optional(Schema.Number.pipe(Schema.positive()))
  }))
})

const EnvName = Schema.String.pipe(Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: () => "expected the name of an environment variable" }))

export const AuthFile = Schema.Struct({
  /** "keys": every request needs a virtual key. "open": keys are optional. Default: open on a loopback address, keys otherwise. */
  mode: Schema.optional(Schema.Literal("open", "keys")),
  /** The variable holding the admin API's key (default QUORUM_ADMIN_KEY); without it the admin API is off. */
  admin_key_env: Schema.optional(EnvName)
})

export const SpendFile = Schema.Struct({
  /** The SQLite file's folder (default ./data; QUORUM_DATA_DIR overrides). */
  data_dir: Schema.optional(NonEmpty),
  /** The variable holding a postgres:// URL (default QUORUM_DATABASE_URL); when set, PostgreSQL is used instead of SQLite. */
  database_url_env: Schema.optional(EnvName),
  /** How long a reservation holds budget if its request never settles (its process died). */
  reservation_ttl_ms: Schema.optional(PositiveMs),
  /** false: no ledger rows (keys, budgets and rate limits still work, and settle). */
  ledger: Schema.optional(Schema.Boolean),
  /** How long ledger rows wait to be written together. */
  flush_ms: Schema.optional(Schema.Int.pipe(Schema.between(1, 10_000))),
  /** Output tokens assumed for a model whose output ceiling is unknown, when its key has a budget and the request sets no max_tokens (the call is capped there). */
  default_output_tokens: Schema.optional(Schema.Int.pipe(Schema.positive()))
})

export const ConfigFile = Schema.Struct({
  server: Schema.optional(Schema.Struct({
    max_body_bytes: Schema.optional(Schema.Int.pipe(Schema.positive())),
    /** Chat and consensus requests one worker serves at once; past it, a fast 503 server_overloaded. */
    max_in_flight: Schema.optional(Schema.Int.pipe(Schema.positive())),
    /** Connections one worker opens to one deployment; calls past it wait for one, within their timeouts. */
    max_upstream_connections: Schema.optional(Schema.Int.pipe(Schema.positive())),
    /** Bounds on a request body's shape; a body over one is refused with a 400 naming it. */
    limits: Schema.optional(Schema.Struct({
      max_depth: Schema.optional(Schema.Int.pipe(Schema.between(2, 100_000))),
      max_messages: Schema.optional(Schema.Int.pipe(Schema.positive())),
      max_content_parts: Schema.optional(Schema.Int.pipe(Schema.positive())),
      max_tools: Schema.optional(Schema.Int.pipe(Schema.positive())),
      max_string_chars: Schema.optional(Schema.Int.pipe(Schema.positive()))
    }))
  })),
  defaults: Schema.optional(Schema.Struct({
    timeouts: Schema.optional(TimeoutsFile),
    retry: Schema.optional(RetryFile),
    circuit: Schema.optional(CircuitFile)
  })),
  models: Schema.Array(ModelFile).pipe(Schema.minItems(1)),
  routes: Schema.optional(Schema.Array(RouteFile)),
  consensus: Schema.optional(ConsensusFile),
  auth: Schema.optional(AuthFile),
  spend: Schema.optional(SpendFile),
  /** The response cache of every route and model (a route's own replaces it); absent, nothing is cached. */
  cache: Schema.optional(CacheSettings),
  /** Traces (OpenTelemetry, OTLP/HTTP): off without an endpoint. */
  telemetry: Schema.optional(TelemetrySettings),
  /** Content policies on every request and answer of the gateway (src/policy/spec.ts). */
  policies: Schema.optional(Schema.Array(PolicySpec)),
  /** Folders of check modules (`type: module` checks), after QUORUM_CHECKS_DIR's. */
  check_dirs: Schema.optional(Schema.Array(NonEmpty))
})
export type ConfigFile = typeof ConfigFile.Type
