import { describe, expect, it } from "vitest"
import { AttemptRecord } from "../src/billing/meter"
import type { FunctionTool, Message } from "../src/protocol/chat-request"
import type { ChatCompletionChunk } from "../src/protocol/chat-response"
import { countTokens, promptTokens } from "../src/protocol/tokens"
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
