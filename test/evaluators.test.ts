/** The built-in evaluators in evaluators/, and loading evaluators from folders. */
import { Effect, Either } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import answerMatch from "../evaluators/answer-match"
import consistency from "../evaluators/consistency"
import jsonSchema, { compileSchema } from "../evaluators/json-schema"
import type { Candidate, EvaluationInput } from "../src/consensus/evaluator"
import { BUILTIN_EVALUATORS, loadEvaluators } from "../src/consensus/registry"

const request = { model: "consensus", messages: [{ role: "user" as const, content: "q" }] }
const input = (answers: ReadonlyArray<string>, extra: Partial<EvaluationInput> = {}): EvaluationInput => ({
  request,
  candidates: answers.map((content, i): Candidate => ({ id: `c${i}`, model: `m${i}`, content })),
  options: {},
  ...extra
})

describe("answer_match", () => {
  it("scores by the share of equivalent answers, 100 apart from 1000", async () => {
    expect(await answerMatch.evaluate(input(["100", "The answer is 100.", "1000", "100.0"]))).toEqual([0.75, 0.75, 0.25, 0.75])
  })

  it("takes a tolerance for numbers", async () => {
    const answers = ["3.14159", "3.1416", "2.72"]
    expect(await answerMatch.evaluate(input(answers))).toEqual([1 / 3, 1 / 3, 1 / 3])
    expect(await answerMatch.evaluate(input(answers, { options: { relative_tolerance: 0.001 } }))).toEqual([2 / 3, 2 / 3, 1 / 3])
  })
})

describe("consistency", () => {
  it("counts agreement on short answers, never character similarity", async () => {
    expect(await consistency.evaluate(input(["100", "100", "1000"]))).toEqual([0.5, 0.5, 0])
  })

  it("rates free text by similarity, the medoid highest", async () => {
    const scores = await consistency.evaluate(input([
      "The capital of France is Paris, a city on the Seine known for its museums.",
      "The capital of France is Paris, a city on the Seine famous for its museums.",
      "Mount Everest is the highest mountain on Earth, on the border of Nepal and China."
    ]))
    expect(scores[0]).toBeGreaterThan(scores[2]!)
    expect(scores[1]).toBeGreaterThan(scores[2]!)
    for (const s of scores) expect(s).toBeGreaterThanOrEqual(0)
  })

  it("gives a lone candidate full marks", async () => {
    expect(await consistency.evaluate(input(["anything"]))).toEqual([1])
  })
})

describe("json_schema", () => {
  const schema = { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false }
  const withSchema = { ...request, response_format: { type: "json_schema" as const, json_schema: { name: "c", schema } } }

  it("passes JSON that fits the request's schema and gates out the rest", async () => {
    const scores = await jsonSchema.evaluate(input(
      ["{\"city\": \"Paris\"}", "```json\n{\"city\": \"Lyon\"}\n```", "{\"town\": \"Paris\"}", "Paris"],
      { request: withSchema }
    ))
    expect(scores).toEqual([1, 1, 0, 0])
    expect(jsonSchema.gate).toBe(true)
  })

  it("passes any valid JSON without a schema, and takes one from options", async () => {
    expect(await jsonSchema.evaluate(input(["[1]", "{oops"]))).toEqual([1, 0])
    expect(await jsonSchema.evaluate(input(["{\"city\": 1}"], { options: { schema } }))).toEqual([0])
  })

  it("says why a schema is invalid", () => {
    const result = compileSchema({ type: "object", properties: { a: { type: "strnig" } } })
    expect(Either.isLeft(result) && result.left).toContain("type")
    expect(Either.isLeft(compileSchema("not a schema"))).toBe(true)
  })
})

describe("the registry", () => {
  it("loads the built-ins from evaluators/", async () => {
    const registry = await Effect.runPromise(loadEvaluators([BUILTIN_EVALUATORS]))
    expect([...registry.keys()].sort()).toEqual(["answer_match", "consistency", "json_schema"])
  })

  it("registers a custom evaluator dropped into a folder, and it runs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "quorum-evaluators-"))
    writeFileSync(join(dir, "brevity.mjs"), `
export default {
  name: "brevity",
  description: "Shorter answers score higher",
  evaluate: async ({ candidates }) => candidates.map((c) => 1 / (1 + c.content.length / 100))
}
`)
    writeFileSync(join(dir, "notes.txt"), "not a module")
    const registry = await Effect.runPromise(loadEvaluators(["evaluators", dir]))
    const brevity = registry.get("brevity")!
    const [short, long] = await brevity.evaluate(input(["ok", "x".repeat(300)]))
    expect(short).toBeGreaterThan(long!)
  })

  it("refuses a module that exports no evaluator, naming the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "quorum-evaluators-"))
    writeFileSync(join(dir, "broken.mjs"), "export default { name: \"broken\", description: \"no evaluate\" }\n")
    const result = await Effect.runPromise(Effect.either(loadEvaluators([dir])))
    expect(Either.isLeft(result) && result.left.message).toMatch(/broken\.mjs: the module must export an evaluator.*evaluate/)
  })

  it("refuses a name used twice, naming both files", async () => {
    const dir = mkdtempSync(join(tmpdir(), "quorum-evaluators-"))
    writeFileSync(join(dir, "mine.mjs"), "export const evaluator = { name: \"consistency\", description: \"d\", evaluate: () => [] }\n")
    const result = await Effect.runPromise(Effect.either(loadEvaluators(["evaluators", dir])))
    expect(Either.isLeft(result) && result.left.message).toMatch(/mine\.mjs: an evaluator named "consistency" is already registered from evaluators\/consistency\.ts/)
  })
})
