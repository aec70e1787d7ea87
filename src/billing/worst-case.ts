/**
 * The most a request can cost before it runs, which is what a key's budget reserves:
 * its prompt, counted with a tokenizer, and every output token it may write, at the
 * dearest price among the deployments its route may try.
 */
import type { ResolvedConfig } from "../config/gateway-config"
import { type ChatCompletionRequest, maxOutputTokens } from "../protocol/chat-request"
import { worstCaseMicros } from "../domain/money"
import type { CostOption } from "./store/store"
import { promptTokensOf } from "../protocol/tokens"

const targetsOf = (config: ResolvedConfig, model: string): ReadonlyArray<string> =>
  config.routes.get(model)?.targets.map((t) => t.deployment) ?? [model]

/**
 * Micro-dollars for one call to a model or any target of its route; undefined when a
 * target has no price, so its cost cannot be bounded.
 */
export const worstCaseOf = (config: ResolvedConfig, model: string, prompt: number, output: number): number | undefined => {
  let worst = 0
  for (const id of targetsOf(config, model)) {
    const price = config.deployments.get(id)?.price
    if (price === undefined) return undefined
    worst = Math.max(worst, worstCaseMicros(price, prompt, output))
  }
  return worst
}

/** The output ceiling every target of a model documents; undefined if one does not. */
const documentedCeiling = (config: ResolvedConfig, model: string): number | undefined => {
  let ceiling = 0
  for (const id of targetsOf(config, model)) {
    const max = config.deployments.get(id)?.maxOutputTokens
    if (max === undefined) return undefined
    ceiling = Math.max(ceiling, max)
  }
  return ceiling
}

export interface ChatBound {
  readonly option: CostOption
  /**
   * Set when the request gives no max_tokens and the model documents no ceiling: the
   * bound assumed `spend.default_output_tokens`, so a budgeted call must be capped there.
   */
  readonly capOutputAt: number | undefined
}

/**
 * A chat request's worst case. A model without a price (a local one, usually) counts as
 * free: its tokens are still recorded, at no cost.
 */
export const chatBound = (config: ResolvedConfig, request: ChatCompletionRequest): ChatBound => {
  const prompt = promptTokensOf(request)
  const requested = maxOutputTokens(request)
  const ceiling = requested ?? documentedCeiling(config, request.model)
  const output = ceiling ?? config.spend.defaultOutputTokens
  const micros = worstCaseOf(config, request.model, prompt, output) ?? 0
  return {
    option: { micros, tokens: prompt + output },
    capOutputAt: ceiling === undefined && micros > 0 ? output : undefined
  }
}
