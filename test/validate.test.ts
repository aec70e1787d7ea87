/**
 * The hot path checks wire values with ajv-compiled JSON Schema (protocol/validate.ts)
 * and trusts what passes: a value ajv lets through that the Effect schema would refuse
 * would reach a provider unchecked. Here both judge the same values, generated from each
 * schema, then mutated (a field replaced by arbitrary JSON, removed, an unknown one
 * added), and arbitrary JSON, and must agree on every one. Seeded, so a failure replays.
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Schema } from "effect"
import fc from "fast-check"
import { CreateKey, UpdateKey } from "../src/billing/keys"
import { ConsensusRequest, ConsensusSetup } from "../src/consensus/request"
import { FeedbackBody } from "../src/http/feedback"
import { MessagesRequest } from "../src/ingress/anthropic/wire"
import { ResponsesRequest } from "../src/ingress/responses/wire"
import { ChatCompletionRequest } from "../src/protocol/chat-request"
import { ChatCompletion, ChatCompletionChunk } from "../src/protocol/chat-response"
import { EmbeddingRequest, EmbeddingResponse } from "../src/protocol/embeddings"
import { compiled, validator } from "../src/protocol/validate"

const SEED = 20261204

/** A schema as this test uses it: its compiled check (if any), Schema's, and values of it. */
const subject = <A>(name: string, schema: Schema.Schema<A, A>) => ({
  name,
  fast: compiled(schema),
  is: Schema.is(schema) as (value: unknown) => boolean,
  generated: () => fc.sample(Arbitrary.make(schema), { numRuns: 150, seed: SEED }) as ReadonlyArray<unknown>
})

/** Every schema a request path checks with `validator`. */
const subjects = [
  subject("ChatCompletionRequest", ChatCompletionRequest),
  subject("ChatCompletion", ChatCompletion),
  subject("ChatCompletionChunk", ChatCompletionChunk),
  subject("EmbeddingRequest", EmbeddingRequest),
  subject("EmbeddingResponse", EmbeddingResponse),
  subject("ConsensusRequest", ConsensusRequest),
  subject("MessagesRequest", MessagesRequest),
  subject("ResponsesRequest", ResponsesRequest),
  subject("ConsensusSetup", ConsensusSetup),
  subject("CreateKey", CreateKey),
  subject("UpdateKey", UpdateKey),
  subject("FeedbackBody", FeedbackBody)
]

/** Every place in a JSON value, as the path of keys and indexes to it. */
const pathsOf = (value: unknown, at: ReadonlyArray<string | number> = []): Array<ReadonlyArray<string | number>> => {
  const here = [at]
  if (Array.isArray(value)) return [...here, ...value.flatMap((v, i) => pathsOf(v, [...at, i]))]
  if (value !== null && typeof value === "object") return [...here, ...Object.entries(value).flatMap(([k, v]) => pathsOf(v, [...at, k]))]
  return here
}

type Mutation = "replace" | "remove" | "add"

/** A copy of `value` with one change at `path`. */
const mutated = (value: unknown, path: ReadonlyArray<string | number>, how: Mutation, other: unknown): unknown => {
  if (path.length === 0) return how === "replace" ? other : value
  const copy = structuredClone(value) as Record<string | number, unknown>
  let parent: Record<string | number, unknown> = copy
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>
  const last = path[path.length - 1]!
  const target = parent[last]
  if (how === "replace") parent[last] = other
  else if (how === "remove") {
    if (Array.isArray(parent)) parent.splice(last as number, 1)
    else delete parent[last]
  } else if (target !== null && typeof target === "object" && !Array.isArray(target)) (target as Record<string, unknown>)["x_unknown_field"] = other
  else parent[last] = other
  return copy
}

/** JSON as a client or an upstream sends it: what JSON cannot carry (undefined, NaN) gone as JSON.stringify drops it. */
const asJson = (value: unknown): unknown => JSON.parse(JSON.stringify(value) ?? "null")

describe("compiled validation", () => {
  it("compiles every validated schema (else it falls back to Schema.is, ten times slower)", () => {
    for (const { fast, name } of subjects) expect(fast, name).toBeDefined()
  })

  it("falls back where JSON Schema cannot say what a schema checks", () => {
    expect(compiled(Schema.String.pipe(Schema.filter((s) => s.startsWith("a"))))).toBeUndefined()
    expect(compiled(Schema.Struct({ at: Schema.DateFromSelf }))).toBeUndefined()
    // Effect's own filters whose JSON Schema says less than they check ("ab" matches ^a.), and flags a pattern loses.
    const weak = [
      Schema.String.pipe(Schema.startsWith("a.")),
      Schema.String.pipe(Schema.includes("a*")),
      Schema.String.pipe(Schema.endsWith(".x")),
      Schema.String.pipe(Schema.lowercased()),
      Schema.String.pipe(Schema.capitalized()),
      Schema.String.pipe(Schema.pattern(/^[^a]{2}$/u))
    ]
    for (const schema of weak) expect(compiled(schema)).toBeUndefined()
    expect(compiled(Schema.Number.pipe(Schema.multipleOf(3)))).toBeUndefined()
    expect(compiled(Schema.Finite)).toBeUndefined()
    // A JSON Schema of its own replaces the generated one; a required key that may be undefined is optional to JSON Schema;
    // an index signature is not checked against declared keys by JSON Schema.
    expect(compiled(Schema.Struct({ a: Schema.Number }).annotations({ jsonSchema: { type: "object" } }))).toBeUndefined()
    expect(compiled(Schema.Struct({ a: Schema.UndefinedOr(Schema.String) }))).toBeUndefined()
    expect(compiled(Schema.Struct({ a: Schema.Literal(1) }, Schema.Record({ key: Schema.String, value: Schema.String })))).toBeUndefined()
    const check = validator(Schema.Struct({ name: Schema.String.pipe(Schema.filter((s) => s.startsWith("a"))) }))
    expect(check({ name: "abc" })._tag).toBe("Right")
    expect(check({ name: "bcd" })._tag).toBe("Left")
  })

  it("asks for required keys as the value's own, as Schema does", () => {
    const check = compiled(Schema.Struct({ constructor: Schema.Unknown, toString: Schema.Unknown }))!
    expect(check({})).toBe(false)
    expect(check({ constructor: 1, toString: null })).toBe(true)
  })

  it("checks a recursive schema, compiled or not, without failing", () => {
    interface Tree {
      readonly children: ReadonlyArray<Tree>
    }
    const Tree: Schema.Schema<Tree> = Schema.Struct({ children: Schema.Array(Schema.suspend((): Schema.Schema<Tree> => Tree)) })
    const check = validator(Tree)
    expect(check({ children: [{ children: [] }] })._tag).toBe("Right")
    expect(check({ children: [{ children: [1] }] })._tag).toBe("Left")
  })

  it("lets through, as it is, a value Schema accepts and ajv does not (a key named __proto__)", () => {
    const body = JSON.parse('{"model":"m","messages":[{"role":"user","content":"hi"}],"logit_bias":{"__proto__":5},"x_vendor":1}') as unknown
    const checked = validator(ChatCompletionRequest)(body)
    expect(checked._tag === "Right" && checked.right).toBe(body)
  })

  it("keeps Schema's counting: UTF-16 lengths, safe integers, infinities", () => {
    const bounded = compiled(Schema.Struct({ p: Schema.Number.pipe(Schema.between(0, 1)) }))!
    expect(bounded(JSON.parse('{"p":1e400}'))).toBe(false)
    const short = compiled(Schema.String.pipe(Schema.maxLength(2)))!
    expect(short("😀")).toBe(true)
    expect(short("😀😀")).toBe(false)
    const int = compiled(Schema.Struct({ n: Schema.Int }))!
    expect(int({ n: 3 })).toBe(true)
    expect(int({ n: 1e300 })).toBe(false)
    expect(int({ n: 1.5 })).toBe(false)
  })

  it("keeps unknown fields on the value it lets through", () => {
    const check = validator(ChatCompletionRequest)
    const body = { model: "m", messages: [{ role: "user", content: "hi", x_extra: 1 }], x_vendor: { a: 1 } }
    const checked = check(body)
    expect(checked._tag === "Right" && checked.right).toBe(body)
  })

  for (const { name, fast, is, generated } of subjects) {
    it(`agrees with Schema.is on ${name}: generated, mutated and arbitrary JSON`, () => {
      if (fast === undefined) return expect.fail(`${name} does not compile`)
      const valid = generated().map(asJson)
      const others = fc.sample(fc.jsonValue({ maxDepth: 2 }), { numRuns: 400, seed: SEED })
      const picks = fc.sample(fc.tuple(fc.nat(), fc.constantFrom<Mutation>("replace", "remove", "add"), fc.nat()), { numRuns: 2_000, seed: SEED })
      const values: Array<unknown> = [...valid, ...others]
      picks.forEach(([p, how, o], i) => {
        const base = valid[i % valid.length]
        const paths = pathsOf(base)
        values.push(mutated(base, paths[p % paths.length]!, how, others[o % others.length]))
      })
      let accepted = 0
      for (const value of values) {
        const expected = is(value)
        if (fast(value) !== expected) expect.fail(`${name}: ajv says ${!expected}, Schema.is says ${expected} for ${JSON.stringify(value)}`)
        if (expected) accepted++
      }
      // Both sides were exercised: many values pass, many fail.
      expect(accepted).toBeGreaterThan(100)
      expect(values.length - accepted).toBeGreaterThan(100)
    })
  }
})
