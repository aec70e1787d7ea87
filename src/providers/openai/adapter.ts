/**
 * The openai adapter: any OpenAI-compatible API, OpenAI's own and the providers that speak
 * its wire format (DeepSeek, Qwen, Mistral, Groq, Together, OpenRouter) or run locally
 * (Ollama, vLLM), with each provider's preset and list prices.
 */
import type { Adapter } from "../adapter"
import { makeOpenAIClient } from "./client"

export const openaiAdapter: Adapter = {
  name: "openai",
  make: makeOpenAIClient,
  providers: {
    openai: {
      baseUrl: "https://api.openai.com/v1",
      keyEnv: ["OPENAI_API_KEY"],
      models: [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini"
      ],
      catalog: {
        "gpt-5": { input: 1.25, output: 10, cached_input: 0.125, max_output_tokens: 128_000 },
        "gpt-5-mini": { input: 0.25, output: 2, cached_input: 0.025, max_output_tokens: 128_000 },
        "gpt-5-nano": { input: 0.05, output: 0.4, cached_input: 0.005, max_output_tokens: 128_000 },
        "gpt-4.1": { input: 2, output: 8, cached_input: 0.5, max_output_tokens: 32_768 },
        "gpt-4.1-mini": { input: 0.4, output: 1.6, cached_input: 0.1, max_output_tokens: 32_768 },
        "gpt-4.1-nano": { input: 0.1, output: 0.4, cached_input: 0.025, max_output_tokens: 32_768 },
        "gpt-4o": { input: 2.5, output: 10, cached_input: 1.25, max_output_tokens: 16_384 },
        "gpt-4o-mini": { input: 0.15, output: 0.6, cached_input: 0.075, max_output_tokens: 16_384 },
        "o3": { input: 2, output: 8, cached_input: 0.5, max_output_tokens: 100_000 },
        "o4-mini": { input: 1.1, output: 4.4, cached_input: 0.275, max_output_tokens: 100_000 },
        "o3-mini": { input: 1.1, output: 4.4, cached_input: 0.55, max_output_tokens: 100_000 }
      }
    },
    deepseek: {
      baseUrl: "https://api.deepseek.com/v1",
      keyEnv: ["DEEPSEEK_API_KEY"],
      models: [
        "deepseek-chat",
        "deepseek-reasoner"
      ],
      catalog: {
        "deepseek-chat": { input: 0.28, output: 0.42, cached_input: 0.028, max_output_tokens: 8_192 },
        "deepseek-reasoner": { input: 0.28, output: 0.42, cached_input: 0.028, max_output_tokens: 65_536 }
      }
    },
    qwen: {
      baseUrl: "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
      keyEnv: ["DASHSCOPE_API_KEY"],
      models: [
        "qwen-max",
        "qwen-plus",
        "qwen-turbo"
      ],
      catalog: {
        "qwen3-max": {
          input: 1.2,
          output: 6,
          tiers: [
            { above_input_tokens: 32_000, input: 2.4, output: 12 },
            { above_input_tokens: 128_000, input: 3, output: 15 }
          ],
          max_output_tokens: 65_536
        },
        "qwen-max": { input: 1.6, output: 6.4, max_output_tokens: 8_192 },
        "qwen-plus": { input: 0.4, output: 1.2, tiers: [{ above_input_tokens: 256_000, input: 1.2, output: 3.6 }], max_output_tokens: 32_768 },
        "qwen-flash": { input: 0.05, output: 0.4, tiers: [{ above_input_tokens: 256_000, input: 0.25, output: 2 }], max_output_tokens: 32_768 },
        "qwen-turbo": { input: 0.05, output: 0.2, max_output_tokens: 16_384 }
      }
    },
    mistral: {
      baseUrl: "https://api.mistral.ai/v1",
      keyEnv: ["MISTRAL_API_KEY"],
      models: [
        "mistral-large-latest",
        "mistral-small-latest"
      ],
      catalog: {
        "mistral-large-latest": { input: 2, output: 6 },
        "mistral-medium-latest": { input: 0.4, output: 2 },
        "mistral-small-latest": { input: 0.1, output: 0.3 },
        "magistral-medium-latest": { input: 2, output: 5 },
        "codestral-latest": { input: 0.3, output: 0.9 },
        "ministral-8b-latest": { input: 0.1, output: 0.1 }
      }
    },
    groq: {
      baseUrl: "https://api.groq.com/openai/v1",
      keyEnv: ["GROQ_API_KEY"],
      models: ["llama-3.3-70b-versatile"],
      catalog: { "llama-3.3-70b-versatile": { input: 0.59, output: 0.79, max_output_tokens: 32_768 } }
    },
    together: {
      baseUrl: "https://api.together.xyz/v1",
      keyEnv: ["TOGETHER_API_KEY"],
      models: ["meta-llama/Llama-3.3-70B-Instruct-Turbo"],
      catalog: { "meta-llama/Llama-3.3-70B-Instruct-Turbo": { input: 0.88, output: 0.88 } }
    },
    openrouter: {
      baseUrl: "https://openrouter.ai/api/v1",
      keyEnv: ["OPENROUTER_API_KEY"],
      models: []
    },
    ollama: { baseUrl: "http://127.0.0.1:11434/v1", keyEnv: [], models: [] },
    vllm: { baseUrl: "http://127.0.0.1:8000/v1", keyEnv: [], models: [] }
  }
}
