/** The built-in evaluators in evaluators/, and loading evaluators from folders: the built-ins always, then only the folders given. */
import { Effect, Either } from "effect"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import answerMatch from "../evaluators/answer-match"
import consistency from "../evaluators/consistency"
import jsonSchema from "../evaluators/json-schema"
import { compileSchema } from "../src/consensus/json-answer"
import type { Candidate, EvaluationInput } from "../src/consensus/evaluator"
import { BUILTIN_NAMES, loadEvaluators, PACKAGE_EVALUATORS } from "../src/consensus/registry"
import { startGateway } from "./support/gateway"
import { spawnGateway } from "./support/spawned"

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
  it("loads the built-ins alone when given no folder", async () => {
    const registry = await Effect.runPromise(loadEvaluators([]))
    expect([...registry.keys()].sort()).toEqual(["answer_match", "consistency", "json_schema"])
    expect([...BUILTIN_NAMES].sort()).toEqual(["answer_match", "consistency", "json_schema"])
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
    const registry = await Effect.runPromise(loadEvaluators([dir]))
    expect([...registry.keys()].sort()).toEqual(["answer_match", "brevity", "consistency", "json_schema"])
    const brevity = registry.get("brevity")!
    const [short, long] = await brevity.evaluate(input(["ok", "x".repeat(300)]))
    expect(short).toBeGreaterThan(long!)
  })

  it("loads evaluators written in TypeScript, ES module or CommonJS", async () => {
    const dir = mkdtempSync(join(tmpdir(), "quorum-evaluators-"))
    // No package.json here: tsx compiles brevity.ts as CommonJS, terse.mts as an ES module.
    writeFileSync(join(dir, "brevity.ts"), `
const scale: number = 100
export default { name: "brevity", description: "d", evaluate: ({ candidates }: { candidates: Array<{ content: string }> }) => candidates.map((c) => 1 / (1 + c.content.length / scale)) }
`)
    writeFileSync(join(dir, "terse.mts"), `
export const evaluator = { name: "terse", description: "d", evaluate: ({ candidates }: { candidates: Array<{ content: string }> }): Array<number> => candidates.map((c) => (c.content.length < 10 ? 1 : 0)) }
`)
    const registry = await Effect.runPromise(loadEvaluators([dir]))
    expect(await registry.get("brevity")!.evaluate(input(["ok"]))).toEqual([1 / (1 + 2 / 100)])
    expect(await registry.get("terse")!.evaluate(input(["ok", "x".repeat(20)]))).toEqual([1, 0])
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
    const result = await Effect.runPromise(Effect.either(loadEvaluators([dir])))
    expect(Either.isLeft(result) && result.left.message).toMatch(/mine\.mjs: an evaluator named "consistency" is already registered from the built-in evaluators\/consistency\.ts/)
  })
})

describe("a user's evaluator in evaluators/", () => {
  // The README's example, under a name of its own so that a user's brevity.ts is never touched.
  const readme = readFileSync("README.md", "utf8")
  const example = /```ts\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf("## Writing an evaluator")))![1]!
  const yaml = (dir: string) => `
models:
  - { id: a, provider: sim, sim: { answers: ["42"] } }
consensus:
  evaluator_dirs: ["${dir}"]
`

  it("is registered from the package's folder, and changes nothing for the tests' gateways, which register their own brevity", async () => {
    const mine = join(PACKAGE_EVALUATORS, `test-brevity-${process.pid}.ts`)
    writeFileSync(mine, example)
    const gateways: Array<{ close(): Promise<void> }> = []
    try {
      // What `npm start` loads by default: the built-ins, then the folder (the built-ins' files skipped).
      const fromPackage = await Effect.runPromise(loadEvaluators([PACKAGE_EVALUATORS]))
      expect(fromPackage.get("brevity")?.description).toBe("Shorter answers score higher")
      expect([...fromPackage.keys()].sort()).toEqual(["answer_match", "brevity", "consistency", "json_schema"])

      const dir = mkdtempSync(join(tmpdir(), "quorum-evaluators-"))
      writeFileSync(join(dir, "brevity.mjs"), "export default { name: \"brevity\", description: \"the test's own\", evaluate: ({ candidates }) => candidates.map(() => 1) }\n")
      const inProcess = await startGateway(yaml(dir))
      gateways.push(inProcess)
      const configFile = join(mkdtempSync(join(tmpdir(), "quorum-config-")), "quorum.yaml")
      writeFileSync(configFile, yaml(dir))
      const spawned = await spawnGateway(configFile, { QUORUM_DATA_DIR: mkdtempSync(join(tmpdir(), "quorum-data-")) })
      gateways.push({ close: spawned.kill })
      for (const gateway of [inProcess, spawned]) {
        const listed = (await (await fetch(`${gateway.url}/evaluators`)).json()) as { data: Array<{ name: string; description: string }> }
        expect(listed.data.map((e) => e.name).sort()).toEqual(["answer_match", "brevity", "consistency", "json_schema"])
        expect(listed.data.find((e) => e.name === "brevity")?.description).toBe("the test's own")
      }
    } finally {
      rmSync(mine, { force: true })
      await Promise.all(gateways.map((g) => g.close()))
    }
  }, 120_000)
})
