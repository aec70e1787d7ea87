/**
 * Public list prices, USD per 1M tokens, as the providers published them on
 * CATALOG_DATE (standard tier, pay as you go; batch and priority tiers are not
 * modelled). `cached_input` is the cache-read rate. Tiers are long-context prices that
 * apply to the whole call once its prompt passes `above_input_tokens`. A model's
 * `price` in config overrides its entry; prices change, so check before you rely on one.
 */
import type { ProviderName } from "./schema"
import { type ModelPrice, modelPrice, type QuotedPrice } from "../domain/money"

export const CATALOG_DATE = "2025-11-01"

export interface CatalogEntry extends QuotedPrice {
  /** The most output tokens the model writes in one call, when the provider documents it. */
  readonly max_output_tokens?: number
}

/** Sonnet 4 and 4.5 cost the same, with the same long-context tier. */
const SONNET_4: CatalogEntry = {
  input: 3,
  output: 15,
  cached_input: 0.3,
  tiers: [{ above_input_tokens: 200_000, input: 6, output: 22.5, cached_input: 0.6 }],
  max_output_tokens: 64_000
}

const entries: Partial<Record<ProviderName, Record<string, CatalogEntry>>> = {
  openai: {
    "gpt-5": { input: 1.25, output: 10, cached_input: 0.125, max_output_tokens: 128_000 },
    "gpt-5-mini": { input: 0.25, output: 2, cached_input: 0.025, max_output_tokens: 128_000 },
    "gpt-5-nano": { input: 0.05, output: 0.4, cached_input: 0.005, max_output_tokens: 128_000 },
    "gpt-4.1": { input: 2, output: 8, cached_input: 0.5, max_output_tokens: 32_768 },
    "gpt-4.1-mini": { input: 0.4, output: 1.6, cached_input: 0.1, max_output_tokens: 32_768 },
    "gpt-4.1-nano": { input: 0.1, output: 0.4, cached_input: 0.025, max_output_tokens: 32_768 },
    "gpt-4o": { input: 2.5, output: 10, cached_input: 1.25, max_output_tokens: 16_384 },
    "gpt-4o-mini": { input: 0.15, output: 0.6, cached_input: 0.075, max_output_tokens: 16_384 },
    "o3": { input: 2, output: 8, cached_input: 0.5, max_output_tokens: 100_000 },
    "o4-mini": { input: 1.1, output: 4.4, cached_input: 0.275, max_output_tokens: 100_000 },
    "o3-mini": { input: 1.1, output: 4.4, cached_input: 0.55, max_output_tokens: 100_000 }
  },
  anthropic: {
    "claude-opus-4-1": { input: 15, output: 75, cached_input: 1.5, max_output_tokens: 32_000 },
    "claude-opus-4": { input: 15, output: 75, cached_input: 1.5, max_output_tokens: 32_000 },
    "claude-sonnet-4-5": SONNET_4,
    "claude-sonnet-4": SONNET_4,
    "claude-3-7-sonnet": { input: 3, output: 15, cached_input: 0.3, max_output_tokens: 64_000 },
    "claude-haiku-4-5": { input: 1, output: 5, cached_input: 0.1, max_output_tokens: 64_000 },
    "claude-3-5-haiku": { input: 0.8, output: 4, cached_input: 0.08, max_output_tokens: 8_192 }
  },
  gemini: {
    "gemini-2.5-pro": {
      input: 1.25,
      output: 10,
      cached_input: 0.125,
      tiers: [{ above_input_tokens: 200_000, input: 2.5, output: 15, cached_input: 0.25 }],
      max_output_tokens: 65_536
    },
    "gemini-2.5-flash": { input: 0.3, output: 2.5, cached_input: 0.03, max_output_tokens: 65_536 },
    "gemini-2.5-flash-lite": { input: 0.1, output: 0.4, cached_input: 0.01, max_output_tokens: 65_536 },
    "gemini-2.0-flash": { input: 0.1, output: 0.4, cached_input: 0.025, max_output_tokens: 8_192 },
    "gemini-2.0-flash-lite": { input: 0.075, output: 0.3, max_output_tokens: 8_192 }
  },
  deepseek: {
    "deepseek-chat": { input: 0.28, output: 0.42, cached_input: 0.028, max_output_tokens: 8_192 },
    "deepseek-reasoner": { input: 0.28, output: 0.42, cached_input: 0.028, max_output_tokens: 65_536 }
  },
  qwen: {
    "qwen3-max": {
      input: 1.2,
      output: 6,
      tiers: [
        { above_input_tokens: 32_000, input: 2.4, output: 12 },
        { above_input_tokens: 128_000, input: 3, output: 15 }
      ],
      max_output_tokens: 65_536
    },
    "qwen-max": { input: 1.6, output: 6.4, max_output_tokens: 8_192 },
    "qwen-plus": { input: 0.4, output: 1.2, tiers: [{ above_input_tokens: 256_000, input: 1.2, output: 3.6 }], max_output_tokens: 32_768 },
    "qwen-flash": { input: 0.05, output: 0.4, tiers: [{ above_input_tokens: 256_000, input: 0.25, output: 2 }], max_output_tokens: 32_768 },
    "qwen-turbo": { input: 0.05, output: 0.2, max_output_tokens: 16_384 }
  },
  mistral: {
    "mistral-large-latest": { input: 2, output: 6 },
    "mistral-medium-latest": { input: 0.4, output: 2 },
    "mistral-small-latest": { input: 0.1, output: 0.3 },
    "magistral-medium-latest": { input: 2, output: 5 },
    "codestral-latest": { input: 0.3, output: 0.9 },
    "ministral-8b-latest": { input: 0.1, output: 0.1 }
  },
  groq: { "llama-3.3-70b-versatile": { input: 0.59, output: 0.79, max_output_tokens: 32_768 } },
  together: { "meta-llama/Llama-3.3-70B-Instruct-Turbo": { input: 0.88, output: 0.88 } }
}

/** Dated snapshots ("claude-sonnet-4-5-20250929", "gpt-4o-2024-08-06") cost what their alias costs. */
const undated = (model: string): string => model.replace(/-(\d{8}|\d{4}-\d{2}-\d{2})$/, "")

export const catalogEntry = (provider: ProviderName, model: string): CatalogEntry | undefined => {
  const table = entries[provider]
  return table?.[model] ?? table?.[undated(model)]
}

export const catalogPrice = (provider: ProviderName, model: string): ModelPrice | undefined => {
  const entry = catalogEntry(provider, model)
  return entry === undefined ? undefined : modelPrice(entry, `catalog ${CATALOG_DATE}`)
}

/** The catalog's models of a provider, registered when only its key is present. */
export const catalogModels = (provider: ProviderName): ReadonlyArray<string> => Object.keys(entries[provider] ?? {})
