import { describe, expect, it } from "vitest"
import { usageOf } from "../src/protocol/chat-response"
import { CATALOG_DATE, catalogEntry, catalogPrice } from "../src/providers/catalog"
import { costMicros, formatUsd, modelPrice, usdToMicros, worstCaseMicros } from "../src/domain/money"
import { resolveTestConfig } from "./support/gateway"

describe("prices and cost", () => {
  it("costs a call in whole micro-dollars, rounded up, with cached input at its own rate", () => {
    const gpt4o = catalogPrice("openai", "gpt-4o")!
    // 1,000 prompt tokens (400 cached) and 500 output: 600×2.5 + 400×1.25 + 500×10 = 7,000 micro-dollars.
    expect(costMicros(gpt4o, usageOf(1_000, 500, 400))).toBe(7_000)
    // DeepSeek's $0.028/1M cache hits are exact, and a fraction of a micro-dollar rounds up.
    const deepseek = catalogPrice("deepseek", "deepseek-chat")!
    expect(costMicros(deepseek, usageOf(100, 0, 100))).toBe(3) // 2.8 µ$
    expect(costMicros(deepseek, usageOf(1_000_000, 0, 1_000_000))).toBe(28_000)
  })

  it("bills the whole call at the long-context tier once the prompt passes it", () => {
    const sonnet = catalogPrice("anthropic", "claude-sonnet-4-5")!
    expect(costMicros(sonnet, usageOf(200_000, 1_000))).toBe(200_000 * 3 + 1_000 * 15)
    expect(costMicros(sonnet, usageOf(200_001, 1_000))).toBe(200_001 * 6 + 1_000 * 22.5)
    const qwen = catalogPrice("qwen", "qwen3-max")!
    expect(costMicros(qwen, usageOf(10_000, 0))).toBe(12_000)
    expect(costMicros(qwen, usageOf(40_000, 0))).toBe(96_000)
    expect(costMicros(qwen, usageOf(130_000, 0))).toBe(390_000)
  })

  it("bounds a call by its uncached prompt and its whole output allowance", () => {
    const sonnet = catalogPrice("anthropic", "claude-sonnet-4-5")!
    expect(worstCaseMicros(sonnet, 1_000, 4_096)).toBe(1_000 * 3 + 4_096 * 15)
    expect(worstCaseMicros(sonnet, 1_000, 4_096)).toBeGreaterThanOrEqual(costMicros(sonnet, usageOf(1_000, 4_096, 900)))
  })

  it("covers the common models of each provider, dated, with snapshots priced as their alias", () => {
    expect(CATALOG_DATE).toMatch(/^\d{4}-\d{2}-\d{2}$/)
    for (const [provider, model] of [
      ["openai", "gpt-4o-mini"],
      ["anthropic", "claude-haiku-4-5"],
      ["gemini", "gemini-2.5-flash"],
      ["deepseek", "deepseek-reasoner"],
      ["qwen", "qwen-plus"],
      ["mistral", "mistral-small-latest"]
    ] as const) expect(catalogEntry(provider, model), `${provider}/${model}`).toBeDefined()
    expect(catalogPrice("anthropic", "claude-sonnet-4-5-20250929")).toEqual(catalogPrice("anthropic", "claude-sonnet-4-5"))
    expect(catalogPrice("openai", "gpt-4o-2024-08-06")).toEqual(catalogPrice("openai", "gpt-4o"))
    expect(catalogPrice("openai", "no-such-model")).toBeUndefined()
  })

  it("keeps amounts as integers and prints them as exact decimals", () => {
    expect(usdToMicros(1.005)).toBe(1_005_000)
    expect(usdToMicros(0.29)).toBe(290_000)
    expect(formatUsd(7_000)).toBe("0.007000")
    expect(formatUsd(12_345_678)).toBe("12.345678")
    const price = modelPrice({ input: 0.01875, output: 0.075 }, "config")
    // Ten thousand calls of 1 prompt token each: summed per call as integers, never as floats.
    let total = 0
    for (let i = 0; i < 10_000; i++) total += costMicros(price, usageOf(1, 0))
    expect(total).toBe(10_000)
  })

  it("takes a model's price from config over the catalog, tiers included", async () => {
    const config = await resolveTestConfig(`
models:
  - { id: mini, provider: openai, model: gpt-4o-mini, price: { input: 1, output: 2, tiers: [{ above_input_tokens: 1000, input: 3, output: 4 }] }, max_output_tokens: 512 }
`, { OPENAI_API_KEY: "sk-test" })
    const mini = config.deployments.get("mini")!
    expect(mini.price?.source).toBe("config")
    expect(mini.maxOutputTokens).toBe(512)
    expect(costMicros(mini.price!, usageOf(1_000, 10))).toBe(1_020)
    expect(costMicros(mini.price!, usageOf(1_001, 10))).toBe(3_043)
  })
})
