/**
 * The deployments to try for a model name, in order: a deployment alone, or a route's
 * targets as its strategy orders them for this request (strategies/registry.ts), what a
 * request sees of itself computed only if its strategy asks (a prompt's tokens cost a
 * tokenizer pass).
 */
import type { ResolvedConfig, Route } from "../config/gateway-config"
import { type ChatCompletionRequest, maxOutputTokens } from "../protocol/chat-request"
import { promptTokensOf } from "../protocol/tokens"
import { worstCaseOf } from "../billing/worst-case"
import { currentTicket } from "../billing/ticket"
import { factsOf, type RequestFacts } from "./facts"
import { type HealthView, LiveHealth } from "./health"
import type { AdaptiveSettings } from "../config/adaptive"
import type { Strategy, StrategyInput } from "./strategy"
import { BeliefsSnapshot, type RouteBeliefs } from "./learned/view"
import { STRATEGIES, strategyFor } from "./strategies/registry"

/** What a strategy may weigh: the request, this worker's live health of each deployment, and what its learned routes believe. */
export interface PlanContext {
  readonly request: ChatCompletionRequest
  readonly health: HealthView
  readonly beliefs: BeliefsSnapshot
}

/** What a route that is not learned would be given if it read beliefs: explore nothing. */
const NO_LEARNING: AdaptiveSettings = { weights: { quality: 1, cost: 0, latency: 0 }, exploration: 0, memory: 2 }

const NO_CONTEXT = (model: string): PlanContext => ({ request: { model, messages: [] }, health: new LiveHealth(), beliefs: new BeliefsSnapshot() })

/** What a request would cost at most on a deployment, in micro-dollars; 0 where it has no price. */
export const costOn = (config: ResolvedConfig, request: ChatCompletionRequest, prompt: () => number) => (deployment: string): number => {
  const output = maxOutputTokens(request) ?? config.deployments.get(deployment)?.maxOutputTokens ?? config.spend.defaultOutputTokens
  return worstCaseOf(config, deployment, prompt(), output) ?? 0
}

const inputFor = (config: ResolvedConfig, route: Route, random: () => number, context: PlanContext, resolve: (name: string) => ReadonlyArray<string>): StrategyInput => {
  let facts: RequestFacts | undefined
  let beliefs: RouteBeliefs | undefined
  // Counted once a request (kept with its messages), and only if a strategy asks.
  const prompt = () => promptTokensOf(context.request)
  return {
    routeId: route.id,
    targets: route.targets,
    get facts() {
      return (facts ??= factsOf(context.request, currentTicket()?.key?.tags))
    },
    health: context.health,
    costMicros: costOn(config, context.request, prompt),
    resolve,
    // Only a learned route reads them.
    get beliefs() {
      return (beliefs ??= context.beliefs.forRoute(route, route.adaptive ?? NO_LEARNING))
    },
    random
  }
}

export const planTargets = (
  config: ResolvedConfig,
  model: string,
  random: () => number = Math.random,
  context: PlanContext = NO_CONTEXT(model)
): ReadonlyArray<string> | undefined => {
  const route = config.routes.get(model)
  if (route === undefined) return config.deployments.has(model) ? [model] : undefined
  // A conditional rule may hand the request to another route; the config has no circles (checked at load).
  const resolve = (name: string): ReadonlyArray<string> => planTargets(config, name, random, context) ?? []
  return strategyOf(route).order(inputFor(config, route, random, context, resolve))
}

// The loader refuses a strategy name the registry does not have; `fallback` only keeps the type honest.
const strategyOf = (route: Route): Strategy => strategyFor(route) ?? STRATEGIES.fallback
