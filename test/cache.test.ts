/**
 * The response cache on its own, without HTTP: what makes two requests the same, the
 * store's bounds in time and bytes, lookups and what they keep (tenants apart, sampled
 * requests only on opt-in, the request's own directives), matches by meaning, and a
 * cached answer replayed as a stream and assembled back.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import fc from "fast-check"
import type { CachedAnswer } from "../src/cache/answer"
import { withCacheControl } from "../src/cache/directives"
import { cacheKey } from "../src/cache/key"
import { memoryStore } from "../src/cache/memory-store"
import { type CacheQuery, type Lookup, lookup, remember, type Semantic } from "../src/cache/response-cache"
import { SemanticIndex } from "../src/cache/semantic-index"
import { CacheSettings } from "../src/config/cache"
import type { ChatCompletionRequest } from "../src/protocol/chat-request"
import type { ChatCompletion } from "../src/protocol/chat-response"
import { completionChunks, StreamAssembler } from "../src/protocol/stream-assembly"

const ask = (text: string, extra: Partial<ChatCompletionRequest> = {}): ChatCompletionRequest => ({
  model: "m",
  messages: [{ role: "user", content: text }],
  temperature: 0,
  ...extra
})

const completion = (content: string): ChatCompletion => ({
  id: "chatcmpl-1",
  object: "chat.completion",
  created: 1_700_000_000,
  model: "m-2025",
  choices: [{ index: 0, message: { role: "assistant", content, refusal: null }, finish_reason: "stop" }],
  usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 }
})

const answer = (content: string): CachedAnswer => ({ completion: completion(content), cost_micros: 1200, deployment: "d", stored_at: 0 })

describe("the cache key", () => {
  it("is the same whatever the order of fields, nulls for absent fields, or either name of the token ceiling", () => {
    const a = cacheKey("t", { model: "m", messages: [{ role: "user", content: "hi" }], temperature: 0, max_tokens: 9, seed: null })
    const b = cacheKey("t", { max_completion_tokens: 9, temperature: 0, messages: [{ content: "hi", role: "user" }], model: "m" })
    expect(a).toBe(b)
  })

  it("ignores how the answer is delivered and billed, and never holds the prompt", () => {
    const plain = cacheKey("t", ask("the secret plan"))
    expect(cacheKey("t", ask("the secret plan", { stream: true, stream_options: { include_usage: true }, user: "u1", metadata: { team: "a" } }))).toBe(plain)
    expect(plain).not.toContain("secret")
  })

  it("differs for what can change the answer, and between tenants", () => {
    const base = cacheKey("t", ask("hi"))
    const variants = [
      cacheKey("t", ask("hi!")),
      cacheKey("t", ask("hi", { model: "n" })),
      cacheKey("t", ask("hi", { temperature: 0.1 })),
      cacheKey("t", ask("hi", { max_tokens: 10 })),
      cacheKey("t", ask("hi", { tools: [{ type: "function", function: { name: "f" } }] })),
      cacheKey("t", ask("hi", { response_format: { type: "json_object" } })),
      cacheKey("other-tenant", ask("hi"))
    ]
    expect(new Set([base, ...variants]).size).toBe(variants.length + 1)
  })
})

describe("the in-memory store", () => {
  it("forgets an answer once its time to live has passed", () =>
    Effect.gen(function*() {
      let now = 1000
      const store = memoryStore({ maxBytes: 1 << 20, clock: { now: () => now } })
      yield* store.set("k", answer("4"), 60_000)
      now += 59_999
      expect((yield* store.get("k"))._tag).toBe("Some")
      now += 2
      expect((yield* store.get("k"))._tag).toBe("None")
    }).pipe(Effect.runSync))

  it("stays within its bound in bytes, the least recently used going first", () =>
    Effect.gen(function*() {
      const one = Buffer.byteLength(JSON.stringify(answer("x".repeat(100))))
      const store = memoryStore({ maxBytes: one * 10 + 10 })
      for (let i = 0; i < 10; i++) yield* store.set(`k${i}`, answer("x".repeat(100)), 60_000)
      yield* store.get("k0")
      yield* store.set("k10", answer("x".repeat(100)), 60_000)
      expect((yield* store.get("k0"))._tag).toBe("Some")
      expect((yield* store.get("k1"))._tag).toBe("None")
      expect((yield* store.get("k10"))._tag).toBe("Some")
    }).pipe(Effect.runSync))
})

const settings = (fields: Partial<typeof CacheSettings.Encoded> = {}) => Schema.decodeUnknownSync(CacheSettings)(fields)

const query = (request: ChatCompletionRequest, extra: Partial<CacheQuery> = {}): CacheQuery => ({
  scope: "tenant-a",
  request,
  directives: {},
  settings: settings(),
  ...extra
})

/** Looks up, and on a miss keeps `fresh` as the answer: what the gateway does around a call. */
const through = (store: ReturnType<typeof memoryStore>, semantic: Semantic | undefined, q: CacheQuery, fresh: string) =>
  Effect.gen(function*() {
    const found: Lookup = yield* lookup(store, semantic, q)
    if (found._tag === "Hit") return found
    yield* remember(store, semantic, found, answer(fresh))
    return found
  })

describe("lookups", () => {
  it("misses, keeps the answer, then hits for the same request of the same tenant only", () =>
    Effect.gen(function*() {
      const store = memoryStore({ maxBytes: 1 << 20 })
      expect((yield* through(store, undefined, query(ask("2+2?")), "4"))._tag).toBe("Miss")
      const again = yield* through(store, undefined, query(ask("2+2?", { stream: true })), "other")
      expect(again).toMatchObject({ _tag: "Hit", match: "exact", answer: { completion: { choices: [{ message: { content: "4" } }] } } })
      expect((yield* lookup(store, undefined, query(ask("2+2?"), { scope: "tenant-b" })))._tag).toBe("Miss")
    }).pipe(Effect.runSync))

  it("keeps sampled answers (temperature > 0, or none given) only where the config opts in", () =>
    Effect.gen(function*() {
      const store = memoryStore({ maxBytes: 1 << 20 })
      const sampled = ask("a poem", { temperature: undefined })
      yield* through(store, undefined, query(sampled), "roses")
      expect((yield* lookup(store, undefined, query(sampled)))._tag).toBe("Miss")
      const optIn = settings({ sampled: true })
      yield* through(store, undefined, query(sampled, { settings: optIn }), "roses")
      expect((yield* lookup(store, undefined, query(sampled, { settings: optIn })))._tag).toBe("Hit")
    }).pipe(Effect.runSync))

  it("keeps nothing where the cache is off", () =>
    Effect.gen(function*() {
      const store = memoryStore({ maxBytes: 1 << 20 })
      yield* through(store, undefined, query(ask("q"), { settings: undefined }), "a")
      expect((yield* lookup(store, undefined, query(ask("q"))))._tag).toBe("Miss")
    }).pipe(Effect.runSync))

  it("honours no_cache (fetch afresh, keep it) and no_store (keep nothing)", () =>
    Effect.gen(function*() {
      const store = memoryStore({ maxBytes: 1 << 20 })
      yield* through(store, undefined, query(ask("q")), "old")
      const fresh = yield* through(store, undefined, query(ask("q"), { directives: { no_cache: true } }), "new")
      expect(fresh._tag).toBe("Miss")
      expect(yield* lookup(store, undefined, query(ask("q")))).toMatchObject({ answer: { completion: { choices: [{ message: { content: "new" } }] } } })
      yield* through(store, undefined, query(ask("other"), { directives: { no_store: true } }), "x")
      expect((yield* lookup(store, undefined, query(ask("other"))))._tag).toBe("Miss")
    }).pipe(Effect.runSync))

  it("reads HTTP's Cache-Control as well as the body's directives", () => {
    expect(withCacheControl(undefined, "No-Cache, max-age=0")).toEqual({ no_cache: true, no_store: false })
    expect(withCacheControl({ no_store: true }, undefined)).toEqual({ no_cache: false, no_store: true })
    expect(withCacheControl(undefined, "no-store")).toEqual({ no_cache: false, no_store: true })
  })
})

/** A stand-in for an embeddings model: a bag of words, so rewordings share most of their vector. */
const bagOfWords: Semantic["embedder"] = {
  embed: (_model, text) =>
    Effect.sync(() => {
      const v = new Array<number>(64).fill(0)
      for (const word of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
        let h = 0
        for (const c of word) h = (h * 31 + c.charCodeAt(0)) % 64
        v[h]! += 1
      }
      return v
    })
}

describe("matches by meaning", () => {
  const semanticSettings = settings({ semantic: { model: "embedder", threshold: 0.9 } })
  const q = (request: ChatCompletionRequest, extra: Partial<CacheQuery> = {}) => query(request, { settings: semanticSettings, ...extra })

  it("serves a reworded request the answer of one that means the same, with its similarity", () =>
    Effect.gen(function*() {
      const store = memoryStore({ maxBytes: 1 << 20 })
      const semantic = { index: new SemanticIndex(100), embedder: bagOfWords }
      yield* through(store, semantic, q(ask("What is the capital city of France?")), "Paris")
      const near = yield* lookup(store, semantic, q(ask("what is the capital city of france")))
      expect(near).toMatchObject({ _tag: "Hit", match: "semantic" })
      if (near._tag === "Hit") expect(near.similarity).toBeGreaterThanOrEqual(0.9)
      expect((yield* lookup(store, semantic, q(ask("How tall is the Eiffel tower?"))))._tag).toBe("Miss")
    }).pipe(Effect.runSync))

  it("never across tenants, other parameters, or prompts with images", () =>
    Effect.gen(function*() {
      const store = memoryStore({ maxBytes: 1 << 20 })
      const semantic = { index: new SemanticIndex(100), embedder: bagOfWords }
      yield* through(store, semantic, q(ask("Describe the capital of France")), "Paris is…")
      expect((yield* lookup(store, semantic, q(ask("describe the capital of france"), { scope: "tenant-b" })))._tag).toBe("Miss")
      expect((yield* lookup(store, semantic, q(ask("describe the capital of france", { max_tokens: 5 }))))._tag).toBe("Miss")
      const withImage: ChatCompletionRequest = {
        model: "m",
        temperature: 0,
        messages: [{ role: "user", content: [{ type: "text", text: "describe the capital of france" }, { type: "image_url", image_url: { url: "https://example.com/x.png" } }] }]
      }
      expect((yield* lookup(store, semantic, q(withImage)))._tag).toBe("Miss")
    }).pipe(Effect.runSync))

  it("falls back to exact matches when the embeddings model fails", () =>
    Effect.gen(function*() {
      const store = memoryStore({ maxBytes: 1 << 20 })
      const failing = { index: new SemanticIndex(100), embedder: { embed: () => Effect.fail("upstream down") } }
      yield* through(store, failing, q(ask("ping")), "pong")
      expect(yield* lookup(store, failing, q(ask("ping")))).toMatchObject({ _tag: "Hit", match: "exact" })
      expect((yield* lookup(store, failing, q(ask("Ping!"))))._tag).toBe("Miss")
    }).pipe(Effect.runSync))

  it("forgets the oldest requests beyond its bound, and expired ones", () => {
    let now = 0
    const index = new SemanticIndex(2, () => now)
    index.add("b", [1, 0], "k1", 1000)
    index.add("b", [0, 1], "k2", 1000)
    index.add("b", [1, 1], "k3", 5000)
    expect(index.size).toBe(2)
    expect(index.nearest("b", [1, 0], 0.99)).toBeUndefined()
    expect(index.nearest("b", [0, 1], 0.99)?.key).toBe("k2")
    now = 2000
    expect(index.nearest("b", [0, 1], 0.99)).toBeUndefined()
    expect(index.nearest("b", [1, 1], 0.99)?.key).toBe("k3")
  })
})

describe("a cached answer as a stream", () => {
  const text = fc.string({ maxLength: 40 })
  const toolCall = fc.record({ id: fc.string({ minLength: 1, maxLength: 8 }), type: fc.constant("function" as const), function: fc.record({ name: fc.string({ minLength: 1, maxLength: 8 }), arguments: text }) })
  const choice = (index: number) =>
    fc.record({
      index: fc.constant(index),
      message: fc.record({
        role: fc.constant("assistant" as const),
        content: fc.option(text, { nil: null }),
        refusal: fc.constant(null),
        tool_calls: fc.option(fc.array(toolCall, { minLength: 1, maxLength: 3 }), { nil: undefined })
      }),
      finish_reason: fc.constantFrom("stop" as const, "length" as const, "tool_calls" as const)
    })
  const completions = fc.integer({ min: 1, max: 3 }).chain((n) =>
    fc.record({
      id: fc.constant("chatcmpl-x"),
      object: fc.constant("chat.completion" as const),
      created: fc.nat(),
      model: fc.constant("m"),
      choices: fc.tuple(...Array.from({ length: n }, (_, i) => choice(i))),
      usage: fc.constant({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 })
    })
  )

  it("replays as chunks that assemble back into the same completion", () => {
    fc.assert(
      fc.property(completions, (c) => {
        const assembler = new StreamAssembler()
        for (const chunk of completionChunks(c, true)) assembler.push(chunk)
        const back = assembler.completion()
        const expected = { ...c, choices: c.choices.map((ch) => ({ ...ch, message: Object.fromEntries(Object.entries(ch.message).filter(([, v]) => v !== undefined)) })) }
        // An empty text and no text stream alike: compare contents as text.
        const normal = (x: unknown) => JSON.parse(JSON.stringify(x).replaceAll('"content":null', '"content":""'))
        expect(normal(back)).toEqual(normal(expected))
      }),
      { seed: 7, numRuns: 200 }
    )
  })

  it("sends the usage chunk only when asked, and assembles nothing from a stream cut before its end", () => {
    const chunks = completionChunks(completion("hello"), false)
    expect(chunks.some((c) => c.usage !== undefined)).toBe(false)
    const cut = new StreamAssembler()
    for (const chunk of chunks.slice(0, -1)) cut.push(chunk)
    expect(cut.completion()).toBeUndefined()
  })
})
