/**
 * Public list prices, USD per 1M tokens, as the providers published them on
 * CATALOG_DATE (standard tier, pay as you go; batch and priority tiers are not
 * modelled). `cached_input` is the cache-read rate. Tiers are long-context prices that
 * apply to the whole call once its prompt passes `above_input_tokens`. A model's
 * `price` in config overrides its entry; prices change, so check before you rely on one.
 * The entries are in each adapter's presets (providers/<name>/adapter.ts).
 */
import { type ModelPrice, modelPrice } from "../domain/money"
import type { CatalogEntry } from "./adapter"
import { providerNamed } from "./registry"

export type { CatalogEntry } from "./adapter"

export const CATALOG_DATE = "2025-11-01"

/** Dated snapshots ("claude-sonnet-4-5-20250929", "gpt-4o-2024-08-06") cost what their alias costs. */
const undated = (model: string): string => model.replace(/-(\d{8}|\d{4}-\d{2}-\d{2})$/, "")

export const catalogEntry = (provider: string, model: string): CatalogEntry | undefined => {
  const table = providerNamed(provider)?.preset.catalog
  return table?.[model] ?? table?.[undated(model)]
}

export const catalogPrice = (provider: string, model: string): ModelPrice | undefined => {
  const entry = catalogEntry(provider, model)
  return entry === undefined ? undefined : modelPrice(entry, `catalog ${CATALOG_DATE}`)
}

