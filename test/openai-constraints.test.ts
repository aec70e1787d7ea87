/**
 * Quorum's request constraints (src/protocol/chat-request.ts, Effect Schema) held to OpenAI's
 * published CreateChatCompletionRequest (test/fixtures/openai/chat-schemas.json), field by
 * field, so that neither drifts silently: every value Quorum accepts OpenAI accepts (nothing
 * invalid is forwarded), and every value OpenAI accepts that Quorum refuses is one of the
 * deliberate, documented differences below. Probes include each field's own bounds as the
 * vendored schema states them (minimum, maximum, maxItems and one step past each).
 */
import { Schema } from "effect"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { ConsensusRequest } from "../src/consensus/request"
import { ChatCompletionRequest, SamplingFields } from "../src/protocol/chat-request"
import { validateChatRequest } from "./support/openai-schemas"

/** The parts of an OpenAPI schema object these probes read. */
interface Json {
  readonly $ref?: string
  readonly allOf?: ReadonlyArray<Json>
  readonly anyOf?: ReadonlyArray<Json>
  readonly oneOf?: ReadonlyArray<Json>
  readonly properties?: Readonly<Record<string, Json>>
  readonly items?: Json
  readonly type?: string
  readonly minimum?: number
  readonly maximum?: number
  readonly minItems?: number
  readonly maxItems?: number
  readonly enum?: ReadonlyArray<unknown>
}

const { schemas } = JSON.parse(readFileSync(fileURLToPath(new URL("./fixtures/openai/chat-schemas.json", import.meta.url)), "utf8")) as { schemas: Record<string, Json> }

const resolve = (node: Json | undefined): Json | undefined => (typeof node?.$ref === "string" ? resolve(schemas[node.$ref.split("/").pop()!]) : node)

/** Every schema given for a top-level property of the request, through allOf and $ref. */
const propertySchemas = (node: Json | undefined, name: string, out: Array<Json> = []): Array<Json> => {
  const resolved = resolve(node)
  for (const part of resolved?.allOf ?? []) propertySchemas(part, name, out)
  const property = resolved?.properties?.[name]
  if (property !== undefined) out.push(property)
  return out
}

/** Boundary values a schema states, and one step past each. */
const boundaryProbes = (node: Json | undefined, out: Array<unknown> = [], seen = new Set<Json>()): Array<unknown> => {
  const schema = resolve(node)
  if (schema === undefined || seen.has(schema)) return out
  seen.add(schema)
  for (const sub of [...(schema.anyOf ?? []), ...(schema.oneOf ?? []), ...(schema.allOf ?? [])]) boundaryProbes(sub, out, seen)
  const step = schema.type === "integer" ? 1 : 0.001
  if (typeof schema.minimum === "number") out.push(schema.minimum, schema.minimum - step)
  if (typeof schema.maximum === "number") out.push(schema.maximum, schema.maximum + step)
  if ((schema.type === "integer" || schema.type === "number") && typeof schema.minimum === "number" && typeof schema.maximum === "number") {
    out.push((schema.minimum + schema.maximum) / 2 + (schema.type === "integer" ? 0.5 : 0))
  }
  if (typeof schema.maxItems === "number") out.push(Array.from({ length: schema.maxItems }, () => "s"), Array.from({ length: schema.maxItems + 1 }, () => "s"))
  if (typeof schema.minItems === "number" && schema.minItems > 0) out.push([])
  if (schema.enum !== undefined) out.push(...schema.enum, `${String(schema.enum[0])}-not`)
  if (schema.items !== undefined) boundaryProbes(schema.items, out, seen)
  return out
}

const GENERIC: ReadonlyArray<unknown> = [
  null, true, false, "", "x", 0, 1, -1, 1.5, 5, 129, -100, 100, 101, 1e20, [], ["a"], [1], ["a", "b", "c", "d", "e"], {}, { a: "b" }, { "1": 1 }, { "1": 101 }, { "1": 1.5 }, { x: 1 },
  "none", "auto", "required", { type: "function", function: { name: "f" } }, [{ type: "function", function: { name: "f" } }],
  [{ type: "function", function: { name: "f", parameters: { type: "object" } } }], [{ type: "custom", custom: { name: "c" } }],
  { type: "allowed_tools", allowed_tools: { mode: "auto", tools: [{ type: "function", function: { name: "f" } }] } },
  { type: "text" }, { type: "json_object" }, { type: "json_schema", json_schema: { name: "n", schema: { type: "object" } } }, { type: "json_schema", json_schema: { name: "" } },
  { type: "json_schema" }, { include_usage: true }, { include_usage: "yes" }
]

/**
 * Where Quorum is deliberately stricter than the published schema: values OpenAI's schema
 * lets through but its API refuses (or documents as invalid), and shapes Quorum does not
 * model yet (custom tools, allowed_tools), which it refuses rather than forward unread.
 */
const STRICTER: Record<string, (value: unknown) => boolean> = {
  // "An upper bound for the number of tokens": zero or less is refused by the API.
  max_tokens: (v) => typeof v === "number" && Number.isInteger(v) && (v <= 0 || !Number.isSafeInteger(v)),
  max_completion_tokens: (v) => typeof v === "number" && Number.isInteger(v) && (v <= 0 || !Number.isSafeInteger(v)),
  // The schema says int64; JSON numbers past 2^53 are not the integers they look like.
  seed: (v) => typeof v === "number" && Number.isInteger(v) && !Number.isSafeInteger(v),
  // The reference documents -100..100 and token-id keys; the schema says "integer".
  logit_bias: (v) => typeof v === "object" && v !== null && !Array.isArray(v) && Object.entries(v).some(([k, x]) => !/^\d+$/.test(k) || Math.abs(x as number) > 100),
  tools: (v) => Array.isArray(v) && v.some((t) => t?.type === "custom"),
  tool_choice: (v) => typeof v === "object" && v !== null && (v as { type?: unknown }).type === "allowed_tools",
  // The reference requires a name; the schema says only "string".
  response_format: (v) => (v as { json_schema?: { name?: unknown } })?.json_schema?.name === ""
}

const base = { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }
const oursChat = Schema.is(ChatCompletionRequest)
const oursConsensus = Schema.is(ConsensusRequest)
const openai = (request: object) => validateChatRequest(request).length === 0

const FIELDS = [...Object.keys(SamplingFields), "stream", "stream_options", "response_format"]

describe("Quorum's request constraints match OpenAI's CreateChatCompletionRequest", () => {
  it("covers fields the vendored schema defines", () => {
    for (const field of FIELDS) expect(propertySchemas(schemas.CreateChatCompletionRequest, field).length, field).toBeGreaterThan(0)
  })

  for (const field of FIELDS) {
    it(field, () => {
      const probes = [...GENERIC, ...propertySchemas(schemas.CreateChatCompletionRequest, field).flatMap((s) => boundaryProbes(s))]
      const forwardedInvalid: Array<unknown> = []
      const undocumentedStrictness: Array<unknown> = []
      for (const value of probes) {
        const request = { ...base, [field]: value }
        const theirs = openai(request)
        const ours = oursChat(request)
        if (ours && !theirs) forwardedInvalid.push(value)
        if (!ours && theirs && STRICTER[field]?.(value) !== true) undocumentedStrictness.push(value)
        // Consensus checks its sampling fields with the same schema.
        if (field in SamplingFields) expect(oursConsensus({ prompt: "hi", [field]: value }), `${field}: ${JSON.stringify(value)}`).toBe(ours)
      }
      expect(forwardedInvalid, "accepted by Quorum, refused by OpenAI's schema").toEqual([])
      expect(undocumentedStrictness, "accepted by OpenAI's schema, refused by Quorum without a documented reason").toEqual([])
    })
  }

  it("messages", () => {
    const image = (url: string) => ({ type: "image_url", image_url: { url } })
    const probes: ReadonlyArray<unknown> = [
      [], [{}], [{ role: "user" }], [{ role: "user", content: [] }], [{ role: "user", content: 5 }], [{ role: "user", content: "hi", name: 5 }],
      [{ role: "user", content: [image("https://example.com/a.png")] }], [{ role: "user", content: [image("a.png")] }],
      [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://e.com/a.png", detail: "max" } }] }],
      [{ role: "user", content: [{ type: "input_audio", input_audio: { data: "AAAA", format: "wav" } }] }],
      [{ role: "user", content: [{ type: "input_audio", input_audio: { data: "AAAA", format: "ogg" } }] }],
      [{ role: "user", content: [{ type: "file", file: { file_id: "f" } }] }], [{ role: "user", content: [{ type: "video", video: {} }] }],
      [{ role: "system", content: "s" }], [{ role: "system", content: [image("https://e.com/a.png")] }], [{ role: "developer", content: [{ type: "text", text: "d" }] }],
      [{ role: "assistant" }], [{ role: "assistant", content: null }], [{ role: "assistant", content: [] }], [{ role: "assistant", content: [{ type: "refusal", refusal: "no" }] }],
      [{ role: "assistant", content: null, tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{}" } }] }],
      [{ role: "tool", content: "r" }], [{ role: "tool", content: "r", tool_call_id: "c" }], [{ role: "tool", content: [], tool_call_id: "c" }],
      [{ role: "function", name: "f", content: "x" }], [{ role: "nobody", content: "x" }]
    ]
    // Deprecated by OpenAI and never translated by Quorum: the function role.
    const stricter = (value: unknown) => Array.isArray(value) && value.some((m) => m?.role === "function")
    for (const messages of probes) {
      const request = { ...base, messages }
      const theirs = openai(request)
      const ours = oursChat(request)
      expect(ours && !theirs, `forwarded although invalid: ${JSON.stringify(messages)}`).toBe(false)
      expect(!ours && theirs && !stricter(messages), `refused although valid: ${JSON.stringify(messages)}`).toBe(false)
    }
  })

  it("the bounds named in the issue", () => {
    const ok = (patch: object) => oursChat({ ...base, ...patch })
    expect([ok({ temperature: 0 }), ok({ temperature: 2 }), ok({ temperature: 2.01 }), ok({ temperature: -0.01 })]).toEqual([true, true, false, false])
    expect([ok({ top_p: 1 }), ok({ top_p: 1.01 })]).toEqual([true, false])
    expect([ok({ n: 1 }), ok({ n: 128 }), ok({ n: 0 }), ok({ n: 129 })]).toEqual([true, true, false, false])
    expect([ok({ stop: ["a", "b", "c", "d"] }), ok({ stop: ["a", "b", "c", "d", "e"] })]).toEqual([true, false])
    expect([ok({ logit_bias: { "50256": -100 } }), ok({ logit_bias: { "50256": 100.5 } }), ok({ logit_bias: "x" })]).toEqual([true, false, false])
    expect([ok({ presence_penalty: -2 }), ok({ frequency_penalty: 2.5 })]).toEqual([true, false])
    expect([ok({ top_logprobs: 20 }), ok({ top_logprobs: 21 })]).toEqual([true, false])
    expect([ok({ max_tokens: 1 }), ok({ max_tokens: 0 }), ok({ max_tokens: 1.5 }), ok({ max_completion_tokens: -1 })]).toEqual([true, false, false, false])
  })
})
