/**
 * Start-up configuration: a YAML file (`--config` or QUORUM_CONFIG), else the models of
 * whichever provider keys are in the environment, else the simulated demo fleet.
 * Every failure names the file, the key and what was expected.
 */
import { checkRules, findCycle } from "../config/route-rules"
import type { CacheSettings } from "../config/cache"
import { TelemetrySettings } from "../config/telemetry"
import * as FileSystem from "@effect/platform/FileSystem"
import { Config, Effect, Either, Option, Redacted, Schema } from "effect"
import { resolve as resolvePath } from "node:path"
import { parseDocument } from "yaml"
import { DEMO_FLEET } from "../config/demo"
import {
  DEFAULT_CIRCUIT,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_MAX_UPSTREAM_CONNECTIONS,
  DEFAULT_RETRY,
  DEFAULT_TIMEOUTS,
  type Deployment,
  isConsensusName,
  type ResolvedConfig,
  type RetryPolicy,
  type Route,
  type SimSpec,
  type SimStyle,
  type Timeouts
} from "../config/gateway-config"
import { firstIssue } from "../config/paths"
import { reliabilityWeight } from "../domain/weights"
import { DEFAULT_LIMITS, type RequestLimits } from "../protocol/limits"
import { catalogEntry, catalogPrice } from "../providers/catalog"
import { PROVIDER_NAMES, providerNamed } from "../providers/registry"
import { STRATEGY_NAMES } from "../routing/strategies/registry"
import { modelPrice } from "../domain/money"
import { ConfigFile, type ModelFile, type PresetFile, type RetryFile, type RouteFile } from "../config/schema"
import { AdaptiveSettings } from "../config/adaptive"
import { compilePolicy, type Policy } from "../policy/policy"
import type { CheckModule } from "../policy/check"
import { CheckModuleShape } from "../policy/checks/module"
import { importExport, type ModuleLoadError, modulesIn } from "../config/modules"


export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  message: Schema.String
}) {}

type Source = ResolvedConfig["source"]

const fail = (where: string, message: string) => Effect.fail(new ConfigError({ message: `${where}: ${message}` }))

const DEFAULT_ADAPTIVE = Schema.decodeUnknownSync(AdaptiveSettings)({})

/** An adaptive route's settings (defaults where it gives none); an `adaptive:` block elsewhere is a mistake. */
const adaptiveOf = (route: RouteFile, strategy: string): Either.Either<AdaptiveSettings | undefined, readonly [string, string]> => {
  if (strategy !== "adaptive") {
    return route.adaptive === undefined ? Either.right(undefined) : Either.left([".adaptive", `an adaptive block is for strategy: adaptive, not ${strategy}`])
  }
  const settings = route.adaptive ?? DEFAULT_ADAPTIVE
  const { weights } = settings
  if (weights.quality + weights.cost + weights.latency === 0) return Either.left([".adaptive.weights", "give at least one weight above 0 (quality, cost or latency)"])
  return Either.right(settings)
}

const mergeTimeouts = (base: Timeouts, file: ModelFile["timeouts"]): Timeouts => ({
  connectMs: file?.connect_ms ?? base.connectMs,
  firstTokenMs: file?.first_token_ms ?? base.firstTokenMs,
  idleMs: file?.idle_ms ?? base.idleMs,
  totalMs: file?.total_ms ?? base.totalMs,
  minTokensPerSecond: file?.min_tokens_per_second ?? base.minTokensPerSecond
})

const mergeRetry = (base: RetryPolicy, file: typeof RetryFile.Type | undefined): RetryPolicy => ({
  maxAttempts: file?.max_attempts ?? base.maxAttempts,
  baseDelayMs: file?.base_delay_ms ?? base.baseDelayMs,
  maxDelayMs: file?.max_delay_ms ?? base.maxDelayMs,
  budgetMs: file?.budget_ms ?? base.budgetMs
})

const readKey = (name: string) =>
  Config.option(Config.redacted(name)).pipe(Effect.orElseSucceed(() => Option.none<Redacted.Redacted<string>>()))

/** The config file's text, parsed as YAML and decoded, or an error naming the key. */
export const parseConfigText = (text: string, where: string): Effect.Effect<ConfigFile, ConfigError> => {
  const doc = parseDocument(text, { prettyErrors: true })
  const yamlError = doc.errors[0]
  if (yamlError !== undefined) {
    return fail(where, `not valid YAML: ${yamlError.message}`)
  }
  return Schema.decodeUnknown(ConfigFile, { onExcessProperty: "error" })(doc.toJS()).pipe(
    Effect.mapError((error) => {
      const issue = firstIssue(error)
      return new ConfigError({
        message: `${where}: ${issue.path === "" ? "" : `${issue.path}: `}${issue.message}`
      })
    })
  )
}

const SIM_STYLES = ["terse", "sentence", "explained"] as const satisfies ReadonlyArray<SimStyle>

/** A style picked by the model's id, so that models without one still differ. */
const styleOf = (id: string): SimStyle => SIM_STYLES[[...id].reduce((sum, c) => sum + c.charCodeAt(0), 0) % SIM_STYLES.length] ?? "terse"

/**
 * A simulated model's settings. Without fixed answers it works them out from the prompt;
 * models that set no style still word them differently from one another (by their id).
 */
const simSpec = (model: ModelFile): SimSpec => ({
  latencyMs: model.sim?.latency_ms ?? 50,
  errorRate: model.sim?.error_rate ?? 0,
  answers: model.sim?.answers,
  mistakeRate: model.sim?.mistake_rate ?? 0,
  style: model.sim?.style ?? styleOf(model.id),
  tokensPerSecond: model.sim?.tokens_per_second ?? 200
})

/** A name the config defines: a model's or a route's id. */
type Defined = (name: string) => boolean

const reservedName = (id: string) => `"${id}" is reserved: "consensus" and "consensus/<preset>" name the consensus engine`

/** The models as deployments: provider presets, catalog prices, defaults, keys (their values join `secrets`). */
const resolveDeployments = (file: ConfigFile, where: string, defaults: { readonly timeouts: Timeouts; readonly retry: RetryPolicy }, secrets: Array<string>) =>
  Effect.gen(function*() {
    const deployments = new Map<string, Deployment>()
    for (const [index, model] of file.models.entries()) {
      const at = `${where}: models[${index}]`
      if (deployments.has(model.id)) {
        return yield* fail(at, `id "${model.id}" is used by another model; ids must be unique`)
      }
      if (isConsensusName(model.id)) return yield* fail(`${at}.id`, reservedName(model.id))
      const known = providerNamed(model.provider)
      if (known === undefined) {
        return yield* fail(`${at}.provider`, `"${model.provider}" is not a provider Quorum knows; one of ${PROVIDER_NAMES.map((name) => `"${name}"`).join(", ")} (any OpenAI-compatible server: openai, vllm or ollama with its base_url)`)
      }
      const preset = known.preset
      const apiKey = yield* findKey(model, preset.keyEnv, at)
      if (apiKey !== undefined) secrets.push(Redacted.value(apiKey))
      yield* checkSim(model, at)
      const upstreamModel = model.model ?? model.id
      deployments.set(model.id, {
        id: model.id,
        provider: model.provider,
        adapter: known.adapter.name,
        upstreamModel,
        baseUrl: (model.base_url ?? preset.baseUrl)?.replace(/\/+$/, ""),
        apiKey,
        price: model.price === undefined ? catalogPrice(model.provider, upstreamModel) : modelPrice(model.price, "config"),
        maxOutputTokens: model.max_output_tokens ?? catalogEntry(model.provider, upstreamModel)?.max_output_tokens,
        maxTokensDefault: model.max_tokens_default ?? 4096,
        maxConnections: file.server?.max_upstream_connections ?? DEFAULT_MAX_UPSTREAM_CONNECTIONS,
        timeouts: mergeTimeouts(defaults.timeouts, model.timeouts),
        retry: mergeRetry(defaults.retry, model.retry),
        sim: model.provider === "sim" ? simSpec(model) : undefined,
        voteWeight: model.weight ?? (model.accuracy === undefined ? 1 : reliabilityWeight(model.accuracy))
      })
    }
    return deployments
  })

const checkSim = (model: ModelFile, at: string) => {
  if (model.sim !== undefined && model.provider !== "sim") return fail(`${at}.sim`, `only models with provider "sim" take sim settings`)
  const derivedOnly = model.sim?.answers === undefined ? undefined : (["mistake_rate", "style"] as const).find((key) => model.sim?.[key] !== undefined)
  if (derivedOnly !== undefined) {
    return fail(`${at}.sim.${derivedOnly}`, `applies to answers worked out from the prompt; a model with fixed answers says exactly those (remove answers or ${derivedOnly})`)
  }
  return Effect.void
}

/** The routes: targets that are models, a strategy of the registry, the settings their strategy takes. */
const resolveRoutes = (file: ConfigFile, where: string, deployments: ReadonlyMap<string, Deployment>) =>
  Effect.gen(function*() {
    const routes = new Map<string, Route>()
    for (const [index, route] of (file.routes ?? []).entries()) {
      const at = `${where}: routes[${index}]`
      if (isConsensusName(route.id)) return yield* fail(`${at}.id`, reservedName(route.id))
      if (deployments.has(route.id) || routes.has(route.id)) {
        return yield* fail(`${at}.id`, `"${route.id}" is already the id of a model or route`)
      }
      const targets = []
      for (const [t, target] of route.targets.entries()) {
        const id = typeof target === "string" ? target : target.model
        if (!deployments.has(id)) {
          return yield* fail(`${at}.targets[${t}]`, `"${id}" is not a model id; expected one of ${[...deployments.keys()].join(", ")}`)
        }
        targets.push({ deployment: id, weight: typeof target === "string" ? 1 : target.weight ?? 1 })
      }
      const strategy = route.strategy ?? "fallback"
      if (!STRATEGY_NAMES.includes(strategy)) {
        return yield* fail(`${at}.strategy`, `"${strategy}" is not a routing strategy; one of ${STRATEGY_NAMES.map((name) => `"${name}"`).join(", ")}`)
      }
      if (strategy === "conditional" && route.rules === undefined) return yield* fail(`${at}.rules`, "a conditional route needs rules")
      if (strategy !== "conditional" && route.rules !== undefined) return yield* fail(`${at}.rules`, `rules are for strategy: conditional, not ${strategy}`)
      const adaptive = adaptiveOf(route, strategy)
      if (Either.isLeft(adaptive)) return yield* fail(`${at}${adaptive.left[0]}`, `route \`${route.id}\`: ${adaptive.left[1]}`)
      routes.set(route.id, {
        id: route.id,
        strategy,
        targets,
        ...(route.cache === undefined ? {} : { cache: route.cache }),
        ...(adaptive.right === undefined ? {} : { adaptive: adaptive.right })
      })
    }
    // conditional's rules are checked once every route's id is known (a rule may name a later one).
    return yield* withRules(file, where, routes, (name) => deployments.has(name) || routes.has(name))
  })

/** Conditional routes' rules checked against what the config defines, and no route handing requests around in a circle. */
const withRules = (file: ConfigFile, where: string, routes: Map<string, Route>, defined: Defined) =>
  Effect.gen(function*() {
    const handsTo = new Map<string, ReadonlyArray<string>>()
    for (const [index, route] of (file.routes ?? []).entries()) {
      const resolved = routes.get(route.id)
      if (route.rules === undefined || resolved === undefined) continue
      const checked = checkRules(route.id, route.rules, true, defined)
      if (Either.isLeft(checked)) return yield* fail(`${where}: routes[${index}].${checked.left[0]}`, checked.left[1])
      routes.set(route.id, { ...resolved, rules: checked.right })
      handsTo.set(route.id, route.rules.map((r) => r.to).filter((to) => routes.has(to)))
    }
    const circle = findCycle(handsTo)
    if (circle !== undefined) return yield* fail(`${where}: routes`, `rules hand requests around in a circle, which no request could leave: ${circle.join(" → ")}`)
    return routes
  })

/** A semantic cache embeds with a model of this config. */
const checkCaches = (file: ConfigFile, where: string, defined: Defined) => {
  const caches: Array<readonly [string, CacheSettings | undefined]> = [
    ["cache", file.cache],
    ...(file.routes ?? []).map((r, i) => [`routes[${i}].cache`, r.cache] as const)
  ]
  for (const [at, cache] of caches) {
    const model = cache?.semantic?.model
    if (model !== undefined && !defined(model)) return fail(`${where}: ${at}.semantic.model`, `"${model}" is not a model or route id`)
  }
  return Effect.void
}

/** Consensus settings: fan-out sizes, presets naming models of this config, declared evaluators that can run. */
const resolveConsensus = (file: ConfigFile, where: string, defined: Defined) =>
  Effect.gen(function*() {
    const consensus = file.consensus
    const maxFanout = consensus?.max_fanout ?? 5
    const defaultFanout = consensus?.default_fanout ?? Math.min(3, maxFanout)
    if (defaultFanout > maxFanout) {
      return yield* fail(`${where}: consensus.default_fanout`, `${defaultFanout} is above consensus.max_fanout (${maxFanout})`)
    }
    const presets = new Map<string, PresetFile>()
    for (const [index, preset] of (consensus?.presets ?? []).entries()) {
      const at = `${where}: consensus.presets[${index}]`
      if (presets.has(preset.id)) return yield* fail(`${at}.id`, `"${preset.id}" is the id of another preset`)
      for (const [m, model] of (preset.models ?? []).entries()) {
        if (!defined(model)) return yield* fail(`${at}.models[${m}]`, `"${model}" is not a model or route id`)
      }
      presets.set(preset.id, preset)
    }
    for (const [index, declared] of (consensus?.evaluators ?? []).entries()) {
      const at = `${where}: consensus.evaluators[${index}]`
      if (declared.type === "regex") {
        try {
          new RegExp(declared.pattern, declared.flags)
        } catch (error) {
          return yield* fail(`${at}.pattern`, `not a valid regular expression (${(error as Error).message})`)
        }
      } else if (!defined(declared.model)) {
        return yield* fail(`${at}.model`, `"${declared.model}" is not a model or route id`)
      }
    }
    return {
      presets,
      declaredEvaluators: consensus?.evaluators ?? [],
      defaultFanout,
      maxFanout,
      minAgreement: consensus?.min_agreement ?? 0.5,
      timeoutMs: consensus?.timeout_ms ?? 60_000,
      evaluatorTimeoutMs: consensus?.evaluator_timeout_ms ?? 2_000,
      defaultOutputTokens: consensus?.default_output_tokens ?? 1_024,
      evaluatorDirs: consensus?.evaluator_dirs ?? [],
      hedgeMs: consensus?.hedge_ms ?? 2_000,
      learning: {
        minLabels: consensus?.learning?.min_labels ?? 50,
        explore: consensus?.learning?.explore ?? 0.05,
        retentionDays: consensus?.learning?.retention_days ?? 30
      }
    }
  })

const asConfigError = (error: ModuleLoadError) => new ConfigError({ message: error.message })

const decodeCheckModule = Schema.decodeUnknownEither(CheckModuleShape)

/** One check module's export, or what is wrong with it, naming the file. */
const loadCheckModule = (file: string) =>
  Effect.gen(function*() {
    const exported = yield* Effect.mapError(importExport(file, "check"), asConfigError)
    const decoded = decodeCheckModule(exported)
    if (Either.isLeft(decoded)) {
      const issue = firstIssue(decoded.left)
      return yield* new ConfigError({
        message: `${file}: the module must export a check ({ name, find, maxSpan? }) as default or as \`check\`; ${issue.path === "" ? "" : `${issue.path}: `}${issue.message}`
      })
    }
    return exported as CheckModule
  })

/**
 * The check modules of QUORUM_CHECKS_DIR's folder, then of `check_dirs` (relative to the
 * working directory), by name. A module that cannot load, has the wrong shape or takes a
 * name already used stops start-up, naming its file.
 */
const loadCheckModules = (file: ConfigFile) =>
  Effect.gen(function*() {
    const fromEnv = Option.getOrUndefined(yield* Config.option(Config.string("QUORUM_CHECKS_DIR")).pipe(Effect.orElseSucceed(() => Option.none<string>())))
    const dirs = [...(fromEnv === undefined || fromEnv === "" ? [] : [fromEnv]), ...(file.check_dirs ?? [])]
    const modules = new Map<string, CheckModule>()
    const origin = new Map<string, string>()
    for (const dir of dirs) {
      for (const path of yield* Effect.mapError(modulesIn(dir, "checks"), asConfigError)) {
        const module = yield* loadCheckModule(path)
        const earlier = origin.get(module.name)
        if (earlier !== undefined) return yield* new ConfigError({ message: `${path}: a check module named "${module.name}" is already loaded from ${earlier}` })
        modules.set(module.name, module)
        origin.set(module.name, path)
      }
    }
    return modules
  })

/** Content policies, compiled, each naming models of this config (and check modules of its folders). */
const resolvePolicies = (file: ConfigFile, where: string, defined: Defined) =>
  Effect.gen(function*() {
    const modules = yield* loadCheckModules(file)
    const policies: Array<Policy> = []
    for (const [index, spec] of (file.policies ?? []).entries()) {
      const at = `${where}: policies[${index}]`
      if (policies.some((p) => p.name === spec.name)) return yield* fail(`${at}.name`, `"${spec.name}" is the name of another policy`)
      for (const [m, model] of (spec.route_to ?? []).entries()) {
        if (!defined(model)) return yield* fail(`${at}.route_to[${m}]`, `"${model}" is not a model or route id`)
      }
      for (const [m, model] of (spec.models ?? []).entries()) {
        if (!defined(model) && !isConsensusName(model)) return yield* fail(`${at}.models[${m}]`, `"${model}" is not a model or route id`)
      }
      const compiled = compilePolicy(spec, { defined, modules })
      if (Either.isLeft(compiled)) return yield* fail(`${at}.${compiled.left[0]}`, compiled.left[1])
      policies.push(compiled.right)
    }
    return policies
  })

/** Secrets from the environment (admin key, database and Redis URLs), checked for their form; their values join `secrets`. */
const readEnvironment = (file: ConfigFile, where: string, secrets: Array<string>) =>
  Effect.gen(function*() {
    const adminKeyEnv = file.auth?.admin_key_env ?? "QUORUM_ADMIN_KEY"
    const adminKey = Option.getOrUndefined(yield* readKey(adminKeyEnv))
    if (adminKey !== undefined) secrets.push(Redacted.value(adminKey))
    const urlEnv = file.spend?.database_url_env ?? "QUORUM_DATABASE_URL"
    const databaseUrl = Option.getOrUndefined(yield* readKey(urlEnv))
    if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(Redacted.value(databaseUrl))) {
      return yield* fail(`${where}: spend.database_url_env`, `${urlEnv} must be a postgres:// URL`)
    }
    if (databaseUrl !== undefined) secrets.push(Redacted.value(databaseUrl))
    // Replicas share circuits and the response cache through Redis when this is set (it may carry a password).
    const redisUrl = Option.getOrUndefined(yield* readKey("QUORUM_REDIS_URL"))
    if (redisUrl !== undefined && !/^rediss?:\/\//.test(Redacted.value(redisUrl))) {
      return yield* fail(`${where}: QUORUM_REDIS_URL`, "must be a redis:// or rediss:// URL")
    }
    if (redisUrl !== undefined) secrets.push(Redacted.value(redisUrl))
    const dataDir = Option.getOrUndefined(yield* readKey("QUORUM_DATA_DIR"))
    return { adminKey, adminKeyEnv, databaseUrl, redisUrl, dataDir }
  })

/** Applies presets, defaults and keys, and checks what the schema cannot: names and references. */
export const resolveConfig = (
  file: ConfigFile,
  where: string,
  source: Source
): Effect.Effect<ResolvedConfig, ConfigError> =>
  Effect.gen(function*() {
    const defaults = file.defaults
    const timeouts = mergeTimeouts(DEFAULT_TIMEOUTS, defaults?.timeouts)
    const retry = mergeRetry(DEFAULT_RETRY, defaults?.retry)
    const circuit = {
      failureThreshold: defaults?.circuit?.failure_threshold ?? DEFAULT_CIRCUIT.failureThreshold,
      cooldownMs: defaults?.circuit?.cooldown_ms ?? DEFAULT_CIRCUIT.cooldownMs
    }
    const secrets: Array<string> = []
    const deployments = yield* resolveDeployments(file, where, { timeouts, retry }, secrets)
    const routes = yield* resolveRoutes(file, where, deployments)
    const defined: Defined = (name) => deployments.has(name) || routes.has(name)
    yield* checkCaches(file, where, defined)
    const consensus = yield* resolveConsensus(file, where, defined)
    const policies = yield* resolvePolicies(file, where, defined)
    const env = yield* readEnvironment(file, where, secrets)
    const spend = file.spend
    const longestCall = Math.max(...[...deployments.values()].map((d) => d.timeouts.totalMs))
    return {
      source,
      auth: { mode: file.auth?.mode, adminKey: env.adminKey, adminKeyEnv: env.adminKeyEnv },
      spend: {
        database: env.databaseUrl !== undefined
          ? { kind: "postgres", url: env.databaseUrl }
          : { kind: "sqlite", path: resolvePath(env.dataDir === undefined ? spend?.data_dir ?? "data" : Redacted.value(env.dataDir), "quorum.db") },
        ledger: spend?.ledger ?? true,
        // Long enough for any request that is still running: the retry budget plus the longest call.
        reservationTtlMs: spend?.reservation_ttl_ms ?? retry.budgetMs + longestCall + 60_000,
        flushMs: spend?.flush_ms ?? 25,
        defaultOutputTokens: spend?.default_output_tokens ?? 4_096
      },
      consensus,
      maxBodyBytes: file.server?.max_body_bytes ?? DEFAULT_MAX_BODY_BYTES,
      maxInFlight: file.server?.max_in_flight ?? DEFAULT_MAX_IN_FLIGHT,
      policies,
      telemetry: file.telemetry ?? NO_TELEMETRY,
      cache: file.cache,
      redisUrl: env.redisUrl,
      limits: resolveLimits(file.server?.limits),
      retry,
      circuit,
      deployments,
      routes,
      secrets
    }
  })

/**
 * A key named by `api_key_env` must be set. The provider's usual variable is required
 * only for its public endpoint: a custom `base_url` (vLLM, a proxy) may need no key.
 */
const findKey = (model: ModelFile, presetEnv: ReadonlyArray<string>, at: string) =>
  Effect.gen(function*() {
    if (model.api_key_env !== undefined) {
      const key = yield* readKey(model.api_key_env)
      if (Option.isNone(key)) {
        return yield* fail(`${at}.api_key_env`, `environment variable ${model.api_key_env} is not set`)
      }
      return key.value
    }
    for (const name of presetEnv) {
      const key = yield* readKey(name)
      if (Option.isSome(key)) return key.value
    }
    if (presetEnv.length > 0 && model.base_url === undefined) {
      return yield* fail(
        at,
        `provider "${model.provider}" needs a key: set ${presetEnv.join(" or ")}, or name another variable in api_key_env`
      )
    }
    return undefined
  })

interface Discovered {
  readonly models: ReadonlyArray<ModelFile>
  /** The key variables that registered models. */
  readonly keys: ReadonlyArray<string>
  /** Key variables of providers Quorum knows no usual models of (OpenRouter): nothing registered. */
  readonly keysWithoutModels: ReadonlyArray<string>
  /** Each provider's first model first (another provider is the better fallback in an outage), then the rest. */
  readonly defaultRoute: ReadonlyArray<string>
}

/** Models for every provider whose usual key variable is set. */
const fromEnvironment = Effect.gen(function*() {
  const models: Array<ModelFile> = []
  const keys: Array<string> = []
  const keysWithoutModels: Array<string> = []
  const leads: Array<string> = []
  const rest: Array<string> = []
  for (const provider of PROVIDER_NAMES) {
    const preset = providerNamed(provider)?.preset
    if (preset === undefined) continue
    for (const name of preset.keyEnv) {
      if (Option.isNone(yield* readKey(name))) continue
      if (preset.models.length === 0) keysWithoutModels.push(name)
      else keys.push(name)
      for (const [i, id] of preset.models.entries()) {
        models.push({ id, provider, api_key_env: name })
        ;(i === 0 ? leads : rest).push(id)
      }
      break
    }
  }
  return { models, keys, keysWithoutModels, defaultRoute: [...leads, ...rest] } satisfies Discovered
})

export const loadConfig = (path: string | undefined): Effect.Effect<ResolvedConfig, ConfigError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const file = path ?? Option.getOrUndefined(
      yield* Config.option(Config.string("QUORUM_CONFIG")).pipe(Effect.orElseSucceed(() => Option.none()))
    )
    if (file !== undefined) {
      const fs = yield* FileSystem.FileSystem
      const text = yield* fs.readFileString(file).pipe(
        Effect.mapError((e) => new ConfigError({ message: `${file}: cannot read the config file (${e.message})` }))
      )
      const parsed = yield* parseConfigText(text, file)
      return yield* resolveConfig(parsed, file, { kind: "file", path: file })
    }
    const discovered = yield* fromEnvironment
    if (discovered.models.length > 0) {
      // A `default` route, so that `model: "default"` (as in every README example) works with keys alone.
      const routes = [{ id: "default", strategy: "fallback" as const, targets: discovered.defaultRoute }]
      return yield* resolveConfig({ models: discovered.models, routes }, "environment", { kind: "env", keys: discovered.keys })
    }
    return yield* resolveConfig(
      DEMO_FLEET,
      "demo fleet",
      discovered.keysWithoutModels.length > 0 ? { kind: "demo", keysWithoutModels: discovered.keysWithoutModels } : { kind: "demo" }
    )
  })

/** The section's defaults: no endpoint (traces off unless OTEL_EXPORTER_OTLP_ENDPOINT says otherwise). */
const NO_TELEMETRY = Schema.decodeUnknownSync(TelemetrySettings)({})

const resolveLimits = (limits: NonNullable<NonNullable<ConfigFile["server"]>["limits"]> | undefined): RequestLimits => ({
  maxDepth: limits?.max_depth ?? DEFAULT_LIMITS.maxDepth,
  maxMessages: limits?.max_messages ?? DEFAULT_LIMITS.maxMessages,
  maxContentParts: limits?.max_content_parts ?? DEFAULT_LIMITS.maxContentParts,
  maxTools: limits?.max_tools ?? DEFAULT_LIMITS.maxTools,
  maxStringChars: limits?.max_string_chars ?? DEFAULT_LIMITS.maxStringChars
})
