/**
 * The provider adapters, one line each. Adding a wire format: a folder with its client and
 * an adapter.ts (providers/adapter.ts says what it holds), and a line here; adding a
 * provider that speaks an existing format: an entry in that adapter's `providers`.
 */
import type { Adapter, ProviderPreset } from "./adapter"
import { anthropicAdapter } from "./anthropic/adapter"
import { geminiAdapter } from "./gemini/adapter"
import { openaiAdapter } from "./openai/adapter"
import { simAdapter } from "./sim/adapter"

export const ADAPTERS: ReadonlyArray<Adapter> = [
  openaiAdapter,
  anthropicAdapter,
  geminiAdapter,
  simAdapter
]

export interface KnownProvider {
  readonly adapter: Adapter
  readonly preset: ProviderPreset
}

const byProvider = new Map<string, KnownProvider>(
  ADAPTERS.flatMap((adapter) => Object.entries(adapter.providers).map(([name, preset]) => [name, { adapter, preset }] as const))
)

/** The adapter that speaks to a provider, and the provider's preset; undefined for a name no adapter serves. */
export const providerNamed = (name: string): KnownProvider | undefined => byProvider.get(name)

/**
 * Every provider a config may name: each adapter's own first (OpenAI, Anthropic, Google),
 * then those that speak another's format. Without a config, models are registered from
 * the keys found in this order, and the default route tries them in it.
 */
export const PROVIDER_NAMES: ReadonlyArray<string> = [
  ...ADAPTERS.filter((adapter) => adapter.name in adapter.providers).map((adapter) => adapter.name),
  ...[...byProvider.keys()].filter((name) => adapterNamed(name)?.name !== name)
]

export function adapterNamed(name: string): Adapter | undefined {
  return ADAPTERS.find((adapter) => adapter.name === name)
}
