/** The anthropic adapter: Anthropic's Messages API, with its preset and list prices. */
import type { Adapter } from "../adapter"
import { makeAnthropicClient } from "./client"

/** Sonnet 4 and 4.5 cost the same, with the same long-context tier. */
const SONNET_4 = {
  input: 3,
  output: 15,
  cached_input: 0.3,
  tiers: [{ above_input_tokens: 200_000, input: 6, output: 22.5, cached_input: 0.6 }],
  max_output_tokens: 64_000
}

export const anthropicAdapter: Adapter = {
  name: "anthropic",
  make: makeAnthropicClient,
  providers: {
    anthropic: {
      baseUrl: "https://api.anthropic.com",
      keyEnv: ["ANTHROPIC_API_KEY"],
      models: [
        "claude-sonnet-4-5",
        "claude-haiku-4-5",
        "claude-opus-4-1"
      ],
      catalog: {
        "claude-opus-4-1": { input: 15, output: 75, cached_input: 1.5, max_output_tokens: 32_000 },
        "claude-opus-4": { input: 15, output: 75, cached_input: 1.5, max_output_tokens: 32_000 },
        "claude-sonnet-4-5": SONNET_4,
        "claude-sonnet-4": SONNET_4,
        "claude-3-7-sonnet": { input: 3, output: 15, cached_input: 0.3, max_output_tokens: 64_000 },
        "claude-haiku-4-5": { input: 1, output: 5, cached_input: 0.1, max_output_tokens: 64_000 },
        "claude-3-5-haiku": { input: 0.8, output: 4, cached_input: 0.08, max_output_tokens: 8_192 }
      }
    }
  }
}
