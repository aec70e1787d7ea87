import { Effect } from "effect"
import { GatewayConfig } from "../config/gateway-config"
import type { ProviderClient } from "./provider"
import { makeRedactor } from "./redact"
import { adapterNamed } from "./registry"

/** One client per deployment, made once at start-up with its own connection pool. */
export class Upstreams extends Effect.Service<Upstreams>()("quorum/Upstreams", {
  effect: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const redact = makeRedactor(config.secrets)
    const clients = new Map<string, ProviderClient>()
    for (const deployment of config.deployments.values()) {
      // The config names only adapters of the registry (checked at load).
      const adapter = adapterNamed(deployment.adapter)
      if (adapter === undefined) return yield* Effect.die(new Error(`no adapter named ${deployment.adapter}`))
      clients.set(deployment.id, adapter.make(deployment, { redact }))
    }
    return {
      /** Callers only pass ids that the config resolved, so another is a bug, named. */
      client: (id: string): ProviderClient => {
        const client = clients.get(id)
        if (client === undefined) throw new Error(`no client for deployment ${id}`)
        return client
      },
      redact
    }
  })
}) {}
