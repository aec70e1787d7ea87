import type { ConfigFile } from "./schema"

/**
 * The fleet served when there is neither a config file nor a provider key: simulated
 * models with different speeds, prices, reliability and wording, so that routing,
 * fallback, consensus, structured output and tool calls can be tried without spending a
 * cent. They work their answers out from the prompt (arithmetic, a few facts, JSON for a
 * schema, tool calls), so the README's examples answer what they ask.
 *
 * sim-flaky fails a third of its calls (retries and fallback at work); sim-mini answers
 * wrong a third of the time (consensus outvotes it). `accuracy` sets the vote weights and
 * makes a default fan-out of 3 pick sim-smart, sim-fast and sim-mini.
 */
export const DEMO_FLEET: ConfigFile = {
  models: [
    {
      id: "sim-fast",
      provider: "sim",
      price: { input: 0.1, output: 0.4 },
      accuracy: 0.9,
      sim: { latency_ms: 40, style: "terse", tokens_per_second: 400 }
    },
    {
      id: "sim-smart",
      provider: "sim",
      price: { input: 2, output: 8 },
      accuracy: 0.95,
      sim: { latency_ms: 250, style: "explained", tokens_per_second: 120 }
    },
    {
      id: "sim-flaky",
      provider: "sim",
      price: { input: 0.05, output: 0.2 },
      accuracy: 0.75,
      sim: { latency_ms: 60, error_rate: 0.3, style: "sentence", tokens_per_second: 300 }
    },
    {
      id: "sim-mini",
      provider: "sim",
      price: { input: 0.02, output: 0.08 },
      accuracy: 0.8,
      sim: { latency_ms: 30, mistake_rate: 0.3, style: "sentence", tokens_per_second: 500 }
    }
  ],
  routes: [
    { id: "default", strategy: "fallback", targets: ["sim-flaky", "sim-fast", "sim-smart"] },
    { id: "balanced", strategy: "loadbalance", targets: [{ model: "sim-fast", weight: 3 }, { model: "sim-smart", weight: 1 }] }
  ]
}
