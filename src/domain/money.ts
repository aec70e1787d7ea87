/**
 * Model prices and what a call costs. Prices are quoted in USD per 1M tokens, the way
 * providers publish them; internally each is an integer number of picodollars per token
 * (1 USD/1M tokens = 1,000,000 pico-USD per token), so that sub-cent rates such as
 * $0.028/1M stay exact and no amount is ever summed as a float. A call's cost is
 * rounded up to whole micro-dollars, the unit budgets and the ledger keep.
 */
/** Token counts as providers report them (OpenAI's usage object, or any that has its fields). */
export interface TokenUsage {
  readonly prompt_tokens: number
  readonly completion_tokens: number
  readonly prompt_tokens_details?: { readonly cached_tokens?: number | undefined } | null | undefined
}

export interface PriceTier {
  /** The tier applies when a call's prompt has more input tokens than this. */
  readonly aboveInputTokens: number
  /** Picodollars per token. */
  readonly input: number
  readonly output: number
  /** Cached (cache-read) input tokens; equal to `input` where a provider gives no discount. */
  readonly cachedInput: number
}

export interface ModelPrice {
  /** Ascending by `aboveInputTokens`; the first is the base price (above 0), so there is always one. */
  readonly tiers: readonly [PriceTier, ...ReadonlyArray<PriceTier>]
  /** Where the price came from, for reports and /v1/models: "config" or "catalog 2025-11-01". */
  readonly source: string
}

/** What operators write: USD per 1M tokens. */
export interface QuotedRates {
  readonly input: number
  readonly output: number
  readonly cached_input?: number | undefined
}

export interface QuotedPrice extends QuotedRates {
  readonly tiers?: ReadonlyArray<QuotedRates & { readonly above_input_tokens: number }> | undefined
}

/** USD per 1M tokens to picodollars per token; a rate finer than that is not a real price. */
export const picoPerToken = (usdPerMillion: number): number => Math.round(usdPerMillion * 1_000_000)

const tier = (above: number, rates: QuotedRates): PriceTier => ({
  aboveInputTokens: above,
  input: picoPerToken(rates.input),
  output: picoPerToken(rates.output),
  cachedInput: picoPerToken(rates.cached_input ?? rates.input)
})

// Long-context tiers start above a positive prompt size (the config's schema says so), so the base stays first.
export const modelPrice = (quoted: QuotedPrice, source: string): ModelPrice => ({
  tiers: [
    tier(0, quoted),
    ...(quoted.tiers ?? []).map((t) => tier(t.above_input_tokens, t)).sort((a, b) => a.aboveInputTokens - b.aboveInputTokens)
  ],
  source
})

/** Long-context pricing: the whole call is billed at the tier its prompt size falls in. */
export const tierFor = (price: ModelPrice, inputTokens: number): PriceTier => {
  let chosen = price.tiers[0]
  for (const t of price.tiers) if (inputTokens > t.aboveInputTokens) chosen = t
  return chosen
}

const PICO_PER_MICRO = 1_000_000

const toMicros = (pico: number): number => {
  // Above 2^53 picodollars (about $9,000 for one call) the arithmetic would round.
  if (!Number.isSafeInteger(pico)) throw new RangeError(`cost out of range: ${pico} pico-USD`)
  return Math.ceil(pico / PICO_PER_MICRO)
}

/** What a call cost, from the usage the provider reported. */
export const costMicros = (price: ModelPrice, usage: TokenUsage): number => {
  const cached = Math.min(usage.prompt_tokens_details?.cached_tokens ?? 0, usage.prompt_tokens)
  const rates = tierFor(price, usage.prompt_tokens)
  return toMicros((usage.prompt_tokens - cached) * rates.input + cached * rates.cachedInput + usage.completion_tokens * rates.output)
}

/** The most a call can cost: its prompt uncached, and every output token it may write. */
export const worstCaseMicros = (price: ModelPrice, promptTokens: number, outputTokens: number): number => {
  const rates = tierFor(price, promptTokens)
  return toMicros(promptTokens * rates.input + outputTokens * rates.output)
}

/** Micro-dollars as the decimal string responses carry (`x-quorum-cost-usd: 0.000125`). */
export const formatUsd = (micros: number): string => {
  const sign = micros < 0 ? "-" : ""
  const abs = Math.abs(micros)
  return `${sign}${Math.floor(abs / 1_000_000)}.${String(abs % 1_000_000).padStart(6, "0")}`
}

/** USD amounts in config and API input (budgets, max_cost_usd) to micro-dollars, rounded down. */
export const usdToMicros = (usd: number): number => Math.floor(Math.round(usd * 1e8) / 100)
