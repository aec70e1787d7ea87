/**
 * What Quorum knows about each provider without being told: which adapter speaks its
 * API, its public base URL, the environment variable its key is usually in, and the
 * models registered when only that key is present.
 *
 * Prices are public list prices in USD per 1M tokens, taken 2025-11-01; config overrides them.
 */
import type { ProviderName } from "./schema"

export type AdapterName = "openai" | "anthropic" | "gemini" | "sim"

export interface ProviderPreset {
  readonly adapter: AdapterName
  readonly baseUrl: string | undefined
  readonly keyEnv: ReadonlyArray<string>
  readonly models: ReadonlyArray<{ readonly id: string; readonly input: number; readonly output: number }>
}

export const PRESETS: Record<ProviderName, ProviderPreset> = {
  openai: {
    adapter: "openai",
    baseUrl: "https://api.openai.com/v1",
    keyEnv: ["OPENAI_API_KEY"],
    models: [
      { id: "gpt-4o", input: 2.5, output: 10 },
      { id: "gpt-4o-mini", input: 0.15, output: 0.6 },
      { id: "gpt-4.1", input: 2, output: 8 },
      { id: "gpt-4.1-mini", input: 0.4, output: 1.6 }
    ]
  },
  anthropic: {
    adapter: "anthropic",
    baseUrl: "https://api.anthropic.com",
    keyEnv: ["ANTHROPIC_API_KEY"],
    models: [
      { id: "claude-sonnet-4-5", input: 3, output: 15 },
      { id: "claude-haiku-4-5", input: 1, output: 5 },
      { id: "claude-opus-4-1", input: 15, output: 75 }
    ]
  },
  gemini: {
    adapter: "gemini",
    baseUrl: "https://generativelanguage.googleapis.com",
    keyEnv: ["GEMINI_API_KEY", "GOOGLE_API_KEY"],
    models: [
      { id: "gemini-2.5-pro", input: 1.25, output: 10 },
      { id: "gemini-2.5-flash", input: 0.3, output: 2.5 },
      { id: "gemini-2.5-flash-lite", input: 0.1, output: 0.4 }
    ]
  },
  deepseek: {
    adapter: "openai",
    baseUrl: "https://api.deepseek.com/v1",
    keyEnv: ["DEEPSEEK_API_KEY"],
    models: [
      { id: "deepseek-chat", input: 0.28, output: 0.42 },
      { id: "deepseek-reasoner", input: 0.28, output: 0.42 }
    ]
  },
  qwen: {
    adapter: "openai",
    baseUrl: "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
    keyEnv: ["DASHSCOPE_API_KEY"],
    models: [
      { id: "qwen-max", input: 1.6, output: 6.4 },
      { id: "qwen-plus", input: 0.4, output: 1.2 },
      { id: "qwen-turbo", input: 0.05, output: 0.2 }
    ]
  },
  mistral: {
    adapter: "openai",
    baseUrl: "https://api.mistral.ai/v1",
    keyEnv: ["MISTRAL_API_KEY"],
    models: [
      { id: "mistral-large-latest", input: 2, output: 6 },
      { id: "mistral-small-latest", input: 0.1, output: 0.3 }
    ]
  },
  groq: {
    adapter: "openai",
    baseUrl: "https://api.groq.com/openai/v1",
    keyEnv: ["GROQ_API_KEY"],
    models: [{ id: "llama-3.3-70b-versatile", input: 0.59, output: 0.79 }]
  },
  together: {
    adapter: "openai",
    baseUrl: "https://api.together.xyz/v1",
    keyEnv: ["TOGETHER_API_KEY"],
    models: [{ id: "meta-llama/Llama-3.3-70B-Instruct-Turbo", input: 0.88, output: 0.88 }]
  },
  openrouter: {
    adapter: "openai",
    baseUrl: "https://openrouter.ai/api/v1",
    keyEnv: ["OPENROUTER_API_KEY"],
    models: []
  },
  ollama: { adapter: "openai", baseUrl: "http://127.0.0.1:11434/v1", keyEnv: [], models: [] },
  vllm: { adapter: "openai", baseUrl: "http://127.0.0.1:8000/v1", keyEnv: [], models: [] },
  sim: { adapter: "sim", baseUrl: undefined, keyEnv: [], models: [] }
}
