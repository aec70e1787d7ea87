import type { ConfigFile } from "./schema"

/**
 * The fleet served when there is neither a config file nor a provider key: simulated
 * models with different speeds, prices, reliability and answers, so that routing,
 * fallback and (later) consensus can be tried without spending a cent.
 */
export const DEMO_FLEET: ConfigFile = {
  models: [
    {
      id: "sim-fast",
      provider: "sim",
      price: { input: 0.1, output: 0.4 },
      sim: { latency_ms: 40, answers: ["Paris is the capital of France."], tokens_per_second: 400 }
    },
    {
      id: "sim-smart",
      provider: "sim",
      price: { input: 2, output: 8 },
      sim: { latency_ms: 250, answers: ["The capital of France is Paris."], tokens_per_second: 120 }
    },
    {
      id: "sim-flaky",
      provider: "sim",
      price: { input: 0.05, output: 0.2 },
      sim: { latency_ms: 60, error_rate: 0.3, answers: ["Paris."], tokens_per_second: 300 }
    }
  ],
  routes: [
    { id: "default", strategy: "fallback", targets: ["sim-flaky", "sim-fast", "sim-smart"] },
    { id: "balanced", strategy: "loadbalance", targets: [{ model: "sim-fast", weight: 3 }, { model: "sim-smart", weight: 1 }] }
  ]
}
