import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { AttemptRecord } from "../src/billing/meter"
import type { FunctionTool, Message } from "../src/protocol/chat-request"
import type { ChatCompletionChunk } from "../src/protocol/chat-response"
import { countPrompt, countTokens, PART, promptTokens, promptTokensOf, SLICE } from "../src/protocol/tokens"
import { resolveTestConfig } from "./support/gateway"

const question: Message = { role: "user", content: "Which orders shipped late last week?" }

describe("a prompt's tokens", () => {
  it("count the tools a request defines, as their JSON", () => {
    const tools: ReadonlyArray<FunctionTool> = [{
      type: "function",
      function: { name: "search_orders", description: "Searches orders by date and state.", parameters: { type: "object", properties: { from: { type: "string" }, state: { enum: ["late", "on time"] } } } }
    }]
    const added = promptTokens([question], tools) - promptTokens([question])
    expect(added).toBe(countTokens(JSON.stringify(tools)))
    expect(added).toBeGreaterThan(20)
    expect(promptTokens([question], [])).toBe(promptTokens([question]))
  })

  it("count a special token's spelling as text, as a provider reads a prompt", () => {
    expect(countTokens("What does <|endoftext|> mean?")).toBeGreaterThan(countTokens("What does  mean?") + 3)
  })

  it("count an assistant's tool calls, name and arguments, with the messages", () => {
    const args = JSON.stringify({ from: "2026-11-23", state: "late", fields: ["id", "customer", "shipped_at", "promised_at"] })
    const called: Message = { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "search_orders", arguments: args } }] }
    const silent: Message = { role: "assistant", content: null }
    expect(promptTokens([question, called]) - promptTokens([question, silent])).toBe(countTokens("search_orders" + args))
    expect(countTokens("search_orders" + args)).toBeGreaterThan(20)
  })
})

describe("a stream cut before its usage", () => {
  it("is billed on its prompt with the tools it defines, and on the text and tool calls it streamed", async () => {
    const config = await resolveTestConfig("models:\n  - { id: mini, provider: openai, model: gpt-4o-mini }\n", { OPENAI_API_KEY: "sk-test" })
    const tools: ReadonlyArray<FunctionTool> = [{ type: "function", function: { name: "search_orders", parameters: { type: "object", properties: { state: { type: "string" } } } } }]
    const request = { model: "mini", messages: [question], tools, stream: true }
    const record = new AttemptRecord(config.deployments.get("mini")!, request)
    const chunk = (delta: ChatCompletionChunk["choices"][number]["delta"]): ChatCompletionChunk =>
      ({ id: "c", object: "chat.completion.chunk", created: 0, model: "gpt-4o-mini", choices: [{ index: 0, delta, finish_reason: null }] })
    record.observe(chunk({ role: "assistant", content: "Let me look." }))
    record.observe(chunk({ tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "search_orders", arguments: "" } }] }))
    record.observe(chunk({ tool_calls: [{ index: 0, function: { arguments: "{\"state\": \"late\"}" } }] }))
    record.end("cancelled")
    const { usage, estimated } = record.tokens()
    expect(estimated).toBe(true)
    expect(usage.prompt_tokens).toBe(promptTokens([question], tools))
    expect(usage.completion_tokens).toBe(countTokens("Let me look.search_orders{\"state\": \"late\"}"))
  })
})

describe("a long text's tokens", () => {
  // The tokenizer itself, to compare with: what Quorum counts must be its count.
  const exact = (createRequire(import.meta.url)("gpt-tokenizer") as { countTokens: (text: string) => number }).countTokens

  it("are counted exactly, a slice at a time, when the text has spaces between its words", () => {
    const prose = ["README.md", "BENCHMARKS.md"].map((name) => readFileSync(join(import.meta.dirname, "..", name), "utf8")).join("\n")
    const mixed = "Der Preis ist gestiegen. Цена выросла на 5 %. Le prix a augmenté ! 价格 上涨了 🙂 ".repeat(400)
    for (const text of [prose, mixed]) {
      expect(text.length).toBeGreaterThan(20 * SLICE)
      expect(countTokens(text)).toBe(exact(text))
    }
  })

  it("are counted in linear time for a run of one kind of character, which the tokenizer alone takes quadratic time for", () => {
    const cjk = Array.from({ length: 60_000 }, (_, i) => String.fromCodePoint(0x4e00 + ((i * 7919) % 20_000))).join("")
    const runs = [" ".repeat(200_000), "!".repeat(200_000), "\n".repeat(200_000), "🙂".repeat(60_000), cjk, "a".repeat(200_000)]
    for (const run of runs) {
      // No place to cut that keeps the count exact: the run is cut every SLICE characters.
      let sliced = 0
      for (let i = 0; i < run.length; i += SLICE) sliced += exact(run.slice(i, i + SLICE))
      expect(countTokens(run)).toBe(sliced)
    }
    // A long message of them, as a budget's worst case counts it.
    expect(promptTokens([{ role: "user", content: runs.join(" ") }])).toBeGreaterThan(runs.length * 1000)
  })
})

describe("a request's prompt, counted for its admission", () => {
  const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8")
  /** Runs the count; says whether a callback queued for the event loop's next turn ran before it ended. */
  const countedAfterATurn = async (request: { messages: ReadonlyArray<Message> }) => {
    const order: Array<string> = []
    setImmediate(() => order.push("other"))
    const tokens = await Effect.runPromise(Effect.tap(countPrompt(request), () => Effect.sync(() => order.push("counted"))))
    await new Promise((resolve) => setImmediate(resolve))
    return { tokens, otherFirst: order[0] === "other" }
  }

  it("lets the event loop in while it counts a long prompt, to the same count, kept for the request", async () => {
    const request = { messages: [question, { role: "user" as const, content: readme.repeat(2) }] }
    expect(readme.length * 2).toBeGreaterThan(4 * PART)
    const { tokens, otherFirst } = await countedAfterATurn(request)
    expect(otherFirst).toBe(true)
    expect(tokens).toBe(promptTokens(request.messages))
    expect(promptTokensOf(request)).toBe(tokens)
  })

  it("counts a short prompt at once, without waiting for a turn", async () => {
    const request = { messages: [question] }
    const { tokens, otherFirst } = await countedAfterATurn(request)
    expect(otherFirst).toBe(false)
    expect(tokens).toBe(promptTokens(request.messages))
  })
})
