/**
 * What Quorum knows about each provider without being told: which adapter speaks its
 * API, its public base URL, the environment variable its key is usually in, and the
 * models registered when only that key is present.
 * Prices come from the catalog (config/catalog.ts); config overrides them.
 */
import type { ProviderName } from "./schema"

export type AdapterName = "openai" | "anthropic" | "gemini" | "sim"

export interface ProviderPreset {
  readonly adapter: AdapterName
  readonly baseUrl: string | undefined
  readonly keyEnv: ReadonlyArray<string>
  readonly models: ReadonlyArray<string>
}

export const PRESETS: Record<ProviderName, ProviderPreset> = {
  openai: {
    adapter: "openai",
    baseUrl: "https://api.openai.com/v1",
    keyEnv: ["OPENAI_API_KEY"],
    models: [
      "gpt-4o",
      "gpt-4o-mini",
      "gpt-4.1",
      "gpt-4.1-mini"
    ]
  },
  anthropic: {
    adapter: "anthropic",
    baseUrl: "https://api.anthropic.com",
    keyEnv: ["ANTHROPIC_API_KEY"],
    models: [
      "claude-sonnet-4-5",
      "claude-haiku-4-5",
      "claude-opus-4-1"
    ]
  },
  gemini: {
    adapter: "gemini",
    baseUrl: "https://generativelanguage.googleapis.com",
    keyEnv: ["GEMINI_API_KEY", "GOOGLE_API_KEY"],
    models: [
      "gemini-2.5-pro",
      "gemini-2.5-flash",
      "gemini-2.5-flash-lite"
    ]
  },
  deepseek: {
    adapter: "openai",
    baseUrl: "https://api.deepseek.com/v1",
    keyEnv: ["DEEPSEEK_API_KEY"],
    models: [
      "deepseek-chat",
      "deepseek-reasoner"
    ]
  },
  qwen: {
    adapter: "openai",
    baseUrl: "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
    keyEnv: ["DASHSCOPE_API_KEY"],
    models: [
      "qwen-max",
      "qwen-plus",
      "qwen-turbo"
    ]
  },
  mistral: {
    adapter: "openai",
    baseUrl: "https://api.mistral.ai/v1",
    keyEnv: ["MISTRAL_API_KEY"],
    models: [
      "mistral-large-latest",
      "mistral-small-latest"
    ]
  },
  groq: {
    adapter: "openai",
    baseUrl: "https://api.groq.com/openai/v1",
    keyEnv: ["GROQ_API_KEY"],
    models: ["llama-3.3-70b-versatile"]
  },
  together: {
    adapter: "openai",
    baseUrl: "https://api.together.xyz/v1",
    keyEnv: ["TOGETHER_API_KEY"],
    models: ["meta-llama/Llama-3.3-70B-Instruct-Turbo"]
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
