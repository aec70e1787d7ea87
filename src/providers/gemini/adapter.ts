/**
 * The gemini adapter: Google's Gemini API (generateContent, streamGenerateContent,
 * batchEmbedContents), with its preset and list prices.
 */
import type { Adapter } from "../adapter"
import { makeGeminiClient } from "./client"

export const geminiAdapter: Adapter = {
  name: "gemini",
  make: makeGeminiClient,
  providers: {
    gemini: {
      baseUrl: "https://generativelanguage.googleapis.com",
      keyEnv: ["GEMINI_API_KEY", "GOOGLE_API_KEY"],
      models: [
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-2.5-flash-lite"
      ],
      catalog: {
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
      }
    }
  }
}
