/**
 * A provider adapter: everything Quorum knows about one wire format, in its folder
 * (providers/<name>/adapter.ts) and named by one line of providers/registry.ts. The
 * `provider:` a model gives in config is one of the adapters' providers: OpenAI's format
 * serves many (DeepSeek, Qwen, vLLM, ...), each with its own preset and prices.
 */
import type { QuotedPrice } from "../domain/money"
import type { MakeClient } from "./provider"

/** A model's list price, and its output ceiling when the provider documents one. */
export interface CatalogEntry extends QuotedPrice {
  /** The most output tokens the model writes in one call. */
  readonly max_output_tokens?: number
}

/** What a provider is without being told: its public base URL, where its key usually is, its models and their prices. */
export interface ProviderPreset {
  readonly baseUrl: string | undefined
  /** Environment variables its key is usually in, first found wins. */
  readonly keyEnv: ReadonlyArray<string>
  /** Registered when only the key is present. */
  readonly models: ReadonlyArray<string>
  /** List prices, USD per 1M tokens, as published on CATALOG_DATE (providers/catalog.ts). */
  readonly catalog?: Readonly<Record<string, CatalogEntry>>
}

export interface Adapter {
  /** The adapter's name, as deployments record it. */
  readonly name: string
  readonly make: MakeClient
  /** The providers it speaks to, by the name `provider:` takes in config. */
  readonly providers: Readonly<Record<string, ProviderPreset>>
}
