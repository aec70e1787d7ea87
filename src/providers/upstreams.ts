import { Effect } from "effect"
import { GatewayConfig } from "../config/gateway-config"
import type { AdapterName } from "../config/presets"
import { makeAnthropicClient } from "./anthropic/client"
import { makeGeminiClient } from "./gemini/client"
import { makeOpenAIClient } from "./openai/client"
import type { MakeClient, ProviderClient } from "./provider"
import { makeRedactor } from "./redact"
import { makeSimClient } from "./sim/client"

const ADAPTERS: Record<AdapterName, MakeClient> = {
  openai: makeOpenAIClient,
  anthropic: makeAnthropicClient,
  gemini: makeGeminiClient,
  sim: makeSimClient
}

/** One client per deployment, made once at start-up with its own connection pool. */
export class Upstreams extends Effect.Service<Upstreams>()("quorum/Upstreams", {
  effect: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const redact = makeRedactor(config.secrets)
    const clients = new Map<string, ProviderClient>()
    for (const deployment of config.deployments.values()) {
      clients.set(deployment.id, ADAPTERS[deployment.adapter](deployment, { redact }))
    }
    return {
      /** Callers only pass ids that the config resolved. */
      client: (id: string): ProviderClient => clients.get(id)!,
      redact
    }
  })
}) {}
