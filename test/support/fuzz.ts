/**
 * Hostile bodies for /v1/chat/completions and /v1/consensus, generated with fast-check
 * from valid requests and then mutated (wrong types, out-of-range values, deep nesting,
 * huge arrays, odd unicode, duplicated keys, truncated JSON, wrong content types), sent
 * to a real gateway over two OpenAI-format fakes that record what reaches them.
 *
 * What must hold: every answer is a 2xx, or a 4xx in OpenAI's error shape (no 5xx, no
 * dropped connection); every request a fake received is one OpenAI's own schema accepts;
 * and afterwards every model still answers a valid request (no circuit was opened).
 * Used by test/fuzz.test.ts (a few hundred bodies, in CI) and bench/fuzz.ts (npm run fuzz).
 */
import fc from "fast-check"
import type { FakeServer } from "../fakes/fake-server"
import { OPENAI_KEY, startOpenAIFake } from "../fakes/openai-fake"
import { type RunningGateway, startGateway } from "./gateway"
import { validateChatRequest, validateError } from "./openai-schemas"

export interface FuzzCase {
  readonly path: "/v1/chat/completions" | "/v1/consensus"
  /** What was done to the valid request, for the report. */
  readonly mutation: string
  readonly contentType: string | undefined
  readonly text: string
}

// ---------------------------------------------------------------- valid requests

const oddStrings = fc.constantFrom(
  "\u0000",
  "\ud800", // a lone surrogate
  "\udfff\ud800",
  "\u202eevil\u202c", // right-to-left override
  "a\u200bb\ufeff", // zero-width space, byte-order mark
  "👩‍👩‍👧‍👦 e\u0301",
  "\\\"}]",
  "__proto__",
  "constructor"
)
const text = fc.oneof({ weight: 4, arbitrary: fc.string({ maxLength: 40 }) }, fc.fullUnicodeString({ maxLength: 20 }), oddStrings, fc.constant("What is the weather in Paris?"))
const nonEmptyText = text.filter((s) => s.length > 0)

const textPart = fc.record({ type: fc.constant("text"), text })
const userPart = fc.oneof(
  { weight: 3, arbitrary: textPart },
  fc.record(
    { type: fc.constant("image_url"), image_url: fc.record({ url: fc.constantFrom("https://example.com/cat.png", "data:image/png;base64,iVBORw0KGgo="), detail: fc.constantFrom("auto", "low", "high") }, { requiredKeys: ["url"] }) }
  ),
  fc.record({ type: fc.constant("input_audio"), input_audio: fc.record({ data: fc.base64String({ maxLength: 16 }), format: fc.constantFrom("wav", "mp3") }) })
)
const parts = <A>(part: fc.Arbitrary<A>) => fc.array(part, { minLength: 1, maxLength: 3 })

const message = fc.oneof(
  fc.record({ role: fc.constantFrom("system", "developer"), content: fc.oneof(text, parts(textPart)) }),
  { weight: 4, arbitrary: fc.record({ role: fc.constant("user"), content: fc.oneof(text, parts(userPart)), name: fc.constantFrom("alice", "bob") }, { requiredKeys: ["role", "content"] }) },
  fc.record({ role: fc.constant("assistant"), content: fc.oneof(text, fc.constant(null)) })
)
/** A tool call and its result, consistent with each other. */
const toolExchange = fc.constant([
  { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Paris\"}" } }] },
  { role: "tool", tool_call_id: "call_1", content: "sunny" }
])
const messages = fc.tuple(fc.array(message, { maxLength: 3 }), fc.option(toolExchange, { nil: undefined }), nonEmptyText).map(([before, tools, last]) => [
  ...before,
  ...(tools ?? []),
  { role: "user", content: last }
])

const tool = fc.record({
  type: fc.constant("function"),
  function: fc.record({
    name: fc.constantFrom("get_weather", "lookup", "f"),
    description: text,
    parameters: fc.constant({ type: "object", properties: { city: { type: "string" } }, required: ["city"] }),
    strict: fc.boolean()
  }, { requiredKeys: ["name"] })
})

const responseFormat = fc.oneof(
  fc.constant({ type: "text" }),
  fc.constant({ type: "json_object" }),
  fc.record({
    type: fc.constant("json_schema"),
    json_schema: fc.record({
      name: fc.constantFrom("answer", "city_info"),
      schema: fc.constantFrom({ type: "object", properties: { answer: { type: "string" } } }, { type: "object", properties: { n: { type: "integer" }, tags: { type: "array", items: { type: "string" } } } }),
      strict: fc.boolean()
    })
  })
)

const finite = (min: number, max: number) => fc.double({ min, max, noNaN: true, noDefaultInfinity: true })

/** Fields passed through untouched: names OpenAI does not define, values of bounded size. */
const unknownFields = fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }).map((k) => `x_${k}`), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 2 })

const sampling = fc.record({
  temperature: finite(0, 2),
  top_p: finite(0, 1),
  n: fc.integer({ min: 1, max: 128 }),
  max_tokens: fc.integer({ min: 1, max: 100_000 }),
  max_completion_tokens: fc.integer({ min: 1, max: 100_000 }),
  stop: fc.oneof(text, fc.array(text, { minLength: 1, maxLength: 4 })),
  seed: fc.integer(),
  presence_penalty: finite(-2, 2),
  frequency_penalty: finite(-2, 2),
  logit_bias: fc.dictionary(fc.nat(200_000).map(String), fc.integer({ min: -100, max: 100 }), { maxKeys: 3 }),
  logprobs: fc.boolean(),
  top_logprobs: fc.integer({ min: 0, max: 20 }),
  user: text,
  tools: fc.array(tool, { maxLength: 2 }),
  tool_choice: fc.oneof(fc.constantFrom("none", "auto", "required"), fc.constant({ type: "function", function: { name: "get_weather" } })),
  parallel_tool_calls: fc.boolean(),
  metadata: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 2 }),
  store: fc.boolean()
}, { requiredKeys: [] })

const validChat = fc.tuple(
  fc.record({
    model: fc.constantFrom("a", "b", "consensus"),
    messages,
    stream: fc.boolean(),
    stream_options: fc.record({ include_usage: fc.boolean() }),
    response_format: responseFormat
  }, { requiredKeys: ["model", "messages"] }),
  sampling,
  unknownFields
).map(([core, rest, extra]) => ({ ...extra, ...rest, ...core }) as Record<string, unknown>)

const validConsensus = fc.tuple(
  fc.record({
    models: fc.constantFrom(["a", "b"], ["a"], ["b", "a"]),
    early_stop: fc.boolean(),
    strategy: fc.constantFrom("vote", "similarity"),
    min_agreement: finite(0, 1),
    response_format: responseFormat
  }, { requiredKeys: ["models"] }),
  fc.oneof(nonEmptyText.map((prompt) => ({ prompt })), messages.map((m) => ({ messages: m }))),
  sampling.map(({ tools: _tools, tool_choice: _choice, parallel_tool_calls: _parallel, ...rest }) => rest),
  unknownFields
).map(([core, input, rest, extra]) => ({ ...extra, ...rest, ...input, ...core }) as Record<string, unknown>)

// ---------------------------------------------------------------- mutations

/** The fields Quorum checks: where a wrong value must be refused, not forwarded. */
const KNOWN_FIELDS = [
  "model", "messages", "stream", "stream_options", "temperature", "top_p", "n", "max_tokens", "max_completion_tokens", "stop",
  "seed", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "user", "tools", "tool_choice",
  "parallel_tool_calls", "response_format", "metadata", "store", "models", "prompt", "early_stop", "min_agreement", "fanout", "strategy"
] as const

const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, 5, 129, 1e308, -1e308, 2 ** 53, "", "x", [], [1], {}, { "": 1 }, ["a", 1], { "1": 500 }, { "-1": 1 }),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 10 }),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 6 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 })
)

const DEEP = "__QUORUM_FUZZ_DEEP__"
const deepText = (depth: number, shape: "array" | "object") =>
  shape === "array" ? "[".repeat(depth) + "1" + "]".repeat(depth) : "{\"a\":".repeat(depth) + "1" + "}".repeat(depth)

/** Where deep nesting is put, by field path. */
const DEEP_SPOTS: ReadonlyArray<(body: Record<string, unknown>) => void> = [
  (body) => void (body.messages = [{ role: "user", content: DEEP }]),
  (body) => void (body.messages = DEEP),
  (body) => void (body.prompt = DEEP),
  (body) => void (body.response_format = { type: "json_schema", json_schema: { name: "x", schema: { type: "object", properties: DEEP } } }),
  (body) => void (body.x_extra = DEEP),
  (body) => void (body.tools = [{ type: "function", function: { name: "f", parameters: { type: "object", properties: DEEP } } }]),
  (body) => void (body.logit_bias = { "1": DEEP })
]

type Mutation = (body: Record<string, unknown>) => { readonly mutation: string; readonly text: string }

const json = (body: unknown) => JSON.stringify(body)

const mutations: fc.Arbitrary<Mutation> = fc.oneof(
  // Valid, sent as it is.
  { weight: 6, arbitrary: fc.constant<Mutation>((body) => ({ mutation: "none", text: json(body) })) },
  // A known field with a wrong type or an out-of-range value.
  {
    weight: 8,
    arbitrary: fc.tuple(fc.constantFrom(...KNOWN_FIELDS), hostileValue).map(([field, value]): Mutation => (body) => ({
      mutation: `set ${field}`,
      text: json({ ...body, [field]: value })
    }))
  },
  // A message, a part, a tool or a format with a wrong value inside.
  {
    weight: 4,
    arbitrary: fc.tuple(fc.constantFrom("role", "content", "name", "tool_calls", "tool_call_id", "type", "text", "image_url"), hostileValue).map(([field, value]): Mutation => (body) => {
      const messages = Array.isArray(body.messages) ? body.messages : [{ role: "user", content: "hi" }]
      return { mutation: `set messages[0].${field}`, text: json({ ...body, messages: [{ ...(messages[0] as object), [field]: value }, ...messages.slice(1)] }) }
    })
  },
  // A required field left out.
  { weight: 2, arbitrary: fc.constantFrom("model", "messages", "prompt", "models").map((field): Mutation => (body) => {
    const { [field]: _gone, ...rest } = body
    return { mutation: `drop ${field}`, text: json(rest) }
  }) },
  // Deep nesting, from just over the default limit to far past what the stack takes.
  {
    weight: 3,
    arbitrary: fc.tuple(fc.nat(DEEP_SPOTS.length - 1), fc.oneof(fc.integer({ min: 60, max: 80 }), fc.integer({ min: 1_000, max: 20_000 })), fc.constantFrom("array" as const, "object" as const))
      .map(([spot, depth, shape]): Mutation => (body) => {
        const copy = { ...body }
        DEEP_SPOTS[spot]!(copy)
        return { mutation: `deep ${depth} ${shape} at spot ${spot}`, text: json(copy).replace(`"${DEEP}"`, deepText(depth, shape)) }
      })
  },
  // Huge arrays and maps.
  {
    weight: 2,
    arbitrary: fc.constantFrom<Mutation>(
      (body) => ({ mutation: "3000 messages", text: json({ ...body, messages: Array.from({ length: 3_000 }, () => ({ role: "user", content: "hi" })) }) }),
      (body) => ({ mutation: "600 content parts", text: json({ ...body, messages: [{ role: "user", content: Array.from({ length: 600 }, () => ({ type: "text", text: "hi" })) }] }) }),
      (body) => ({ mutation: "50 stop sequences", text: json({ ...body, stop: Array.from({ length: 50 }, (_, i) => `s${i}`) }) }),
      (body) => ({ mutation: "200 tools", text: json({ ...body, tools: Array.from({ length: 200 }, (_, i) => ({ type: "function", function: { name: `f${i}` } })) }) }),
      (body) => ({ mutation: "a 5,000-entry logit_bias", text: json({ ...body, logit_bias: Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [String(i), 1])) }) }),
      (body) => ({ mutation: "a 100,000-element pass-through array", text: json({ ...body, x_big: Array.from({ length: 100_000 }, () => 0) }) }),
      (body) => ({ mutation: "a 1.5 MB string (over max_string_chars)", text: json({ ...body, x_big: "x".repeat(1_500_000) }) }),
      (body) => ({ mutation: "a 3 MB body (over max_body_bytes)", text: json({ ...body, x_big: "x".repeat(3_000_000) }) })
    )
  },
  // A key given twice: the first or the last occurrence hostile (JSON.parse keeps the last).
  {
    weight: 3,
    arbitrary: fc.tuple(fc.constantFrom(...KNOWN_FIELDS), hostileValue, fc.boolean()).map(([field, value, first]): Mutation => (body) => {
      const text = json(body)
      const pair = `${JSON.stringify(field)}:${JSON.stringify(value) ?? "null"}`
      return { mutation: `duplicate ${field} (${first ? "first" : "last"} hostile)`, text: first ? `{${pair},${text.slice(1)}` : `${text.slice(0, -1)},${pair}}` }
    })
  },
  // Odd unicode in a key or the last message.
  {
    weight: 2,
    arbitrary: fc.tuple(oddStrings, fc.fullUnicodeString({ maxLength: 10 })).map(([odd, more]): Mutation => (body) => ({
      mutation: "odd unicode",
      text: json({ ...body, [`x_${odd}`]: more, messages: [{ role: "user", content: `${odd}${more}` }] })
    }))
  },
  // Not JSON, or not an object.
  {
    weight: 3,
    arbitrary: fc.oneof(
      fc.nat().map((n): Mutation => (body) => {
        const text = json(body)
        return { mutation: "truncated", text: text.slice(0, n % text.length) }
      }),
      fc.constantFrom("", "null", "[]", "1", "\"x\"", "{", "}", "{\"model\":", "[{}]", "{\"model\":\"a\",}", "\uFEFF{}", "{'model':'a'}", "NaN").map((t): Mutation => () => ({ mutation: "not a JSON object", text: t })),
      fc.uint8Array({ maxLength: 64 }).map((bytes): Mutation => () => ({ mutation: "random bytes", text: Buffer.from(bytes).toString("latin1") }))
    )
  }
)

const contentTypes = fc.oneof(
  { weight: 8, arbitrary: fc.constant("application/json") },
  fc.constantFrom(undefined, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=latin1")
)

export const fuzzCases: fc.Arbitrary<FuzzCase> = fc.tuple(
  fc.oneof({ weight: 3, arbitrary: validChat.map((body) => ["/v1/chat/completions", body] as const) }, validConsensus.map((body) => ["/v1/consensus", body] as const)),
  mutations,
  contentTypes
).map(([[path, body], mutate, contentType]) => ({ path, contentType, ...mutate(body) }))

// ---------------------------------------------------------------- the run

export interface FuzzReport {
  readonly sent: number
  /** Answers by status. */
  readonly statuses: Readonly<Record<string, number>>
  /** Requests the fakes received. */
  readonly upstreamRequests: number
  /** Everything that broke a rule, with the case that did it. */
  readonly problems: ReadonlyArray<string>
  readonly seconds: number
}

const CONFIG = (a: FakeServer, b: FakeServer) => `
server:
  max_body_bytes: 2000000
  limits: { max_string_chars: 1000000 }
defaults:
  retry: { max_attempts: 2, base_delay_ms: 1, max_delay_ms: 10, budget_ms: 5000 }
consensus:
  default_fanout: 2
  max_fanout: 2
models:
  - { id: a, provider: openai, base_url: "${a.url}/v1" }
  - { id: b, provider: openai, base_url: "${b.url}/v1" }
`

const describeCase = (c: FuzzCase) => `${c.path} [${c.mutation}] (${c.contentType ?? "no content type"}): ${c.text.slice(0, 160)}${c.text.length > 160 ? "…" : ""}`

const send = async (gateway: RunningGateway, c: FuzzCase): Promise<{ status: number; contentType: string; body: string } | { dropped: string }> => {
  try {
    const response = await fetch(`${gateway.url}${c.path}`, {
      method: "POST",
      headers: c.contentType === undefined ? {} : { "content-type": c.contentType },
      body: c.text
    })
    return { status: response.status, contentType: response.headers.get("content-type") ?? "", body: await response.text() }
  } catch (error) {
    return { dropped: String((error as Error).cause ?? error) }
  }
}

/** The rules an answer must keep; a list of what it broke. */
const judge = (answer: { status: number; contentType: string; body: string }): Array<string> => {
  if (answer.status >= 500) return [`answered ${answer.status}: ${answer.body.slice(0, 200)}`]
  if (answer.status < 200 || (answer.status >= 300 && answer.status < 400)) return [`answered ${answer.status}`]
  if (answer.status >= 400) {
    if (!answer.contentType.includes("application/json")) return [`a ${answer.status} without a JSON body`]
    try {
      const errors = validateError(JSON.parse(answer.body))
      return errors.length === 0 ? [] : [`a ${answer.status} not in OpenAI's error shape: ${errors.join("; ")}`]
    } catch {
      return [`a ${answer.status} whose body is not JSON`]
    }
  }
  // A stream that failed after it started ends with an error event: a dropped answer too.
  if (answer.contentType.includes("text/event-stream")) {
    return answer.body.trimEnd().endsWith("data: [DONE]") ? [] : [`a stream that did not end with [DONE]: ${answer.body.slice(-200)}`]
  }
  return []
}

export const runFuzz = async (options: { readonly runs: number; readonly seed: number; readonly concurrency?: number }): Promise<FuzzReport> => {
  const started = performance.now()
  const [a, b] = await Promise.all([startOpenAIFake(), startOpenAIFake()])
  const gateway = await startGateway(CONFIG(a, b), { OPENAI_API_KEY: OPENAI_KEY })
  const problems: Array<string> = []
  const statuses: Record<string, number> = {}
  let upstreamRequests = 0
  try {
    const cases = fc.sample(fuzzCases, { numRuns: options.runs, seed: options.seed })
    let next = 0
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++]!
        const answer = await send(gateway, c)
        if ("dropped" in answer) {
          problems.push(`dropped connection (${answer.dropped}) on ${describeCase(c)}`)
          continue
        }
        statuses[answer.status] = (statuses[answer.status] ?? 0) + 1
        for (const problem of judge(answer)) problems.push(`${problem} on ${describeCase(c)}`)
        // What reached the upstreams is checked as it arrives, then forgotten (10,000 bodies add up).
        for (const fake of [a, b]) {
          for (const received of fake.received.splice(0)) {
            upstreamRequests++
            const invalid = validateChatRequest(received.body)
            // With several requests in flight the case named is the one that was answering: the body is the evidence.
            if (invalid.length > 0) problems.push(`upstream received an invalid request (${invalid.join("; ")}): ${JSON.stringify(received.body).slice(0, 300)}, around ${describeCase(c)}`)
          }
        }
      }
    }
    await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker))

    // Afterwards every model, and a consensus over them, still answers a valid request.
    for (const model of ["a", "b", "consensus"]) {
      const answer = await send(gateway, { path: "/v1/chat/completions", mutation: "health check", contentType: "application/json", text: json({ model, messages: [{ role: "user", content: "still there?" }] }) })
      if ("dropped" in answer || answer.status !== 200) problems.push(`${model} no longer answers a valid request: ${"dropped" in answer ? answer.dropped : `${answer.status} ${answer.body.slice(0, 200)}`}`)
    }
    return { sent: cases.length, statuses, upstreamRequests: upstreamRequests + a.received.length + b.received.length, problems, seconds: (performance.now() - started) / 1000 }
  } finally {
    await gateway.close()
    await Promise.all([a.close(), b.close()])
  }
}
