/**
 * The demo fleet (what `npm start` serves with no config and no key) as a client sees it,
 * through a real gateway and the official `openai` SDK: answers worked out from the
 * prompt, consensus that outvotes a wrong model, structured output, tool calls and `n`.
 * Every response and chunk must validate against OpenAI's published schemas.
 */
import Ajv from "ajv"
import Ajv2020 from "ajv/dist/2020"
import addFormats from "ajv-formats"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { stringify } from "yaml"
import { DEMO_FLEET } from "../src/config/demo"
import type { ConfigFile } from "../src/config/schema"
import { normalize } from "../src/consensus/normalize"
import { type RunningGateway, startGateway } from "./support/gateway"
import { validateChunk, validateCompletion } from "./support/openai-schemas"

const PROMPT = "What is 17 * 23? Answer with the number."

interface Candidate {
  readonly model: string
  readonly status: string
  readonly content: string | null
}
interface Report {
  readonly answer: { readonly content: string; readonly model: string }
  readonly consensus: { readonly reached: boolean; readonly supporting_models: ReadonlyArray<string> }
  readonly candidates: ReadonlyArray<Candidate>
}

/** The demo fleet with one model's settings changed. */
const fleetWith = (id: string, sim: Record<string, unknown>): ConfigFile => ({
  ...DEMO_FLEET,
  models: DEMO_FLEET.models.map((m) => (m.id === id ? { ...m, sim: { ...m.sim, ...sim } } : m))
})

const numberOf = (content: string | null | undefined): number | undefined => {
  const answer = normalize(content ?? "")
  return answer.kind === "number" ? answer.value : undefined
}

const consensus = async (gateway: RunningGateway, body: Record<string, unknown>): Promise<Report> => {
  const response = await fetch(`${gateway.url}/v1/consensus`, { method: "POST", body: JSON.stringify(body) })
  expect(response.status).toBe(200)
  return (await response.json()) as Report
}

const weatherTool = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Current weather for a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
      required: ["city", "unit"],
      additionalProperties: false
    }
  }
}
const timeTool = {
  type: "function" as const,
  function: {
    name: "get_time",
    parameters: { type: "object", properties: { timezone: { type: "string" }, offset_hours: { type: "integer", minimum: -12, maximum: 14 } }, required: ["timezone", "offset_hours"] }
  }
}

describe("the demo fleet", () => {
  let gateway: RunningGateway
  let client: OpenAI

  beforeAll(async () => {
    // As shipped, except that sim-flaky does not fail at random: retries and fallback are
    // routing.test.ts's subject, and here they would only make a test fail now and then.
    gateway = await startGateway(stringify(fleetWith("sim-flaky", { error_rate: 0 })))
    client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: "unused", maxRetries: 0 })
  })
  afterAll(() => gateway.close())

  describe("answers what the prompt asks", () => {
    it.each(["sim-fast", "sim-smart", "sim-flaky", "default", "balanced"])("17 * 23 is 391 from %s, in its own words", async (model) => {
      const completion = await client.chat.completions.create({ model, messages: [{ role: "user", content: PROMPT }] })
      expect(validateCompletion(completion)).toEqual([])
      const content = completion.choices[0]!.message.content
      expect(content).toContain("391")
      expect(numberOf(content)).toBe(391)
      expect(completion.choices[0]!.finish_reason).toBe("stop")
    })

    it("words the same answer differently on different models", async () => {
      const contents = await Promise.all(["sim-fast", "sim-smart", "sim-flaky"].map(async (model) =>
        (await client.chat.completions.create({ model, messages: [{ role: "user", content: PROMPT }] })).choices[0]!.message.content
      ))
      expect(new Set(contents).size).toBe(3)
      expect(contents.map(numberOf)).toEqual([391, 391, 391])
    })

    it.each([
      ["What is (12 + 30) * 2?", "84"],
      ["Compute 100 divided by 8", "12.5"],
      ["what's 2^10 - 1", "1023"],
      ["0.1 + 0.2 = ?", "0.3"],
      ["What is the capital of Japan?", "Tokyo"],
      ["Capital of France?", "Paris"]
    ])("%s → %s", async (prompt, expected) => {
      const completion = await client.chat.completions.create({ model: "sim-smart", messages: [{ role: "user", content: prompt }] })
      expect(completion.choices[0]!.message.content).toContain(expected)
      expect(normalize(completion.choices[0]!.message.content!).key).toBe(normalize(expected).key)
    })

    it("ends at a stop sequence, and at max_tokens with finish_reason length", async () => {
      const stopped = await client.chat.completions.create({ model: "sim-smart", stop: [" so"], messages: [{ role: "user", content: PROMPT }] })
      expect(stopped.choices[0]!.message.content).toBe("17 × 23 = 391,")
      expect(stopped.choices[0]!.finish_reason).toBe("stop")
      const cut = await client.chat.completions.create({ model: "sim-smart", max_tokens: 2, messages: [{ role: "user", content: PROMPT }] })
      expect(cut.choices[0]!.message.content!.length).toBeLessThan("17 × 23 = 391, so the answer is 391.".length)
      expect(cut.choices[0]!.finish_reason).toBe("length")
    })

    it("repeats a question it cannot work out, so the answer visibly relates to it", async () => {
      for (const prompt of ["Write a haiku about autumn rain", "Summarize Hamlet in 1-2 sentences"]) {
        const completion = await client.chat.completions.create({ model: "sim-fast", messages: [{ role: "user", content: prompt }] })
        expect(completion.choices[0]!.message.content).toContain(prompt)
      }
    })
  })

  describe("consensus", () => {
    it("agrees on 391 for the README's example", async () => {
      const report = await consensus(gateway, { prompt: PROMPT, fanout: 3 })
      expect(report.consensus.reached).toBe(true)
      expect(numberOf(report.answer.content)).toBe(391)
      expect(report.candidates.map((c) => c.model).sort()).toEqual(["sim-fast", "sim-mini", "sim-smart"])
    })

    it("outvotes sim-mini on the prompts it gets wrong", async () => {
      const pairs = [[17, 23], [12, 34], [45, 67], [89, 12], [23, 45], [56, 78], [91, 19], [38, 47], [64, 29], [73, 81], [15, 16], [27, 33]]
      const reports = await Promise.all(pairs.map(([a, b]) => consensus(gateway, { prompt: `What is ${a} * ${b}?`, fanout: 3, early_stop: false })))
      let outvoted = 0
      for (const [i, report] of reports.entries()) {
        const right = pairs[i]![0]! * pairs[i]![1]!
        expect(report.consensus.reached).toBe(true)
        expect(numberOf(report.answer.content)).toBe(right)
        const mini = report.candidates.find((c) => c.model === "sim-mini")!
        expect(mini.status).toBe("ok")
        if (numberOf(mini.content) !== right) {
          outvoted++
          expect(Math.abs(numberOf(mini.content)! - right)).toBe(1)
          expect(report.consensus.supporting_models).not.toContain("sim-mini")
        }
      }
      // sim-mini's mistake_rate is 0.3, drawn per prompt: some of these twelve it gets wrong, not all.
      expect(outvoted).toBeGreaterThan(0)
      expect(outvoted).toBeLessThan(pairs.length)
    })

    it("gives the same answer, and the same mistake, to the same prompt", async () => {
      const ask = () => client.chat.completions.create({ model: "sim-mini", messages: [{ role: "user", content: "What is 45 * 67?" }] })
      const [a, b] = await Promise.all([ask(), ask()])
      expect(a.choices[0]!.message.content).toBe(b.choices[0]!.message.content)
    })
  })

  describe("structured output", () => {
    const schema = {
      type: "object",
      properties: {
        answer: { type: "integer" },
        explanation: { type: "string", minLength: 5 },
        confidence: { type: "number", minimum: 0, maximum: 1 },
        verdict: { type: "string", enum: ["correct", "incorrect", "unsure"] },
        steps: { type: "array", items: { $ref: "#/$defs/step" }, minItems: 2, maxItems: 4 },
        tags: { type: "array", items: { type: "string" }, minItems: 3, uniqueItems: true },
        checked: { type: "boolean" },
        note: { anyOf: [{ type: "string", maxLength: 10 }, { type: "null" }] }
      },
      required: ["answer", "explanation", "confidence", "verdict", "steps", "tags", "checked", "note"],
      additionalProperties: false,
      $defs: {
        step: {
          type: "object",
          properties: { order: { type: "integer", minimum: 1 }, text: { type: "string" } },
          required: ["order", "text"],
          additionalProperties: false
        }
      }
    }

    it.each(["sim-fast", "sim-smart", "default"])("answers json_schema with JSON valid against the request's schema (%s)", async (model) => {
      const completion = await client.chat.completions.create({
        model,
        response_format: { type: "json_schema", json_schema: { name: "solution", schema, strict: true } },
        messages: [{ role: "user", content: PROMPT }]
      })
      expect(validateCompletion(completion)).toEqual([])
      const value = JSON.parse(completion.choices[0]!.message.content!) as { answer: number }
      const ajv = new Ajv()
      expect(ajv.validate(schema, value), JSON.stringify(ajv.errors)).toBe(true)
      // The field the prompt answers holds the answer.
      expect(value.answer).toBe(391)
    })

    // What structured-output schemas use: zod-to-json-schema and Pydantic output, recursion, constraints, formats.
    const shapes: Record<string, Record<string, unknown>> = {
      "nullable types and enums": {
        type: "object",
        properties: { name: { type: "string" }, age: { type: ["integer", "null"] }, emails: { type: "array", items: { type: "string", format: "email" } }, role: { type: "string", enum: ["admin", "user"] } },
        required: ["name", "age", "emails", "role"],
        additionalProperties: false
      },
      "a recursive tree": {
        type: "object",
        properties: { root: { $ref: "#/definitions/node" } },
        required: ["root"],
        definitions: { node: { type: "object", properties: { label: { type: "string" }, children: { type: "array", items: { $ref: "#/definitions/node" } } }, required: ["label", "children"], additionalProperties: false } }
      },
      "numeric bounds": {
        type: "object",
        properties: {
          a: { type: "number", exclusiveMinimum: 0, exclusiveMaximum: 1 },
          b: { type: "integer", multipleOf: 5, minimum: 7, maximum: 40 },
          c: { type: "number", minimum: 1000 },
          d: { type: "integer", maximum: -10 },
          e: { type: "number", multipleOf: 0.25, minimum: 0.1 }
        },
        required: ["a", "b", "c", "d", "e"]
      },
      "string formats and lengths": {
        type: "object",
        properties: {
          date: { type: "string", format: "date" },
          when: { type: "string", format: "date-time" },
          id: { type: "string", format: "uuid" },
          url: { type: "string", format: "uri" },
          short: { type: "string", maxLength: 3 },
          long: { type: "string", minLength: 80 }
        },
        required: ["date", "when", "id", "url", "short", "long"]
      },
      "arrays": {
        type: "object",
        properties: {
          colors: { type: "array", items: { enum: ["red", "green", "blue"] }, minItems: 3, uniqueItems: true },
          pair: { type: "array", prefixItems: [{ type: "string" }, { type: "integer" }], items: false, minItems: 2 },
          many: { type: "array", items: { type: "object", properties: { x: { type: "integer" } }, required: ["x"] }, minItems: 5, maxItems: 5 }
        },
        required: ["colors", "pair", "many"]
      },
      "allOf, oneOf and const": {
        allOf: [{ type: "object", properties: { a: { type: "string" } }, required: ["a"] }, { properties: { b: { const: 42 } }, required: ["b"] }],
        properties: { c: { oneOf: [{ type: "boolean" }, { type: "string" }] } },
        required: ["c"]
      },
      "a nullable reference": {
        type: "object",
        properties: { maybe: { anyOf: [{ $ref: "#/$defs/x" }, { type: "null" }] } },
        required: ["maybe"],
        $defs: { x: { type: "object", properties: { y: { type: "boolean" } }, required: ["y"], additionalProperties: false } }
      },
      "minProperties": { type: "object", minProperties: 2, additionalProperties: { type: "integer" } }
    }

    it.each(Object.entries(shapes))("answers a schema with %s with a valid value", async (_, shape) => {
      const completion = await client.chat.completions.create({
        model: "sim-fast",
        response_format: { type: "json_schema", json_schema: { name: "shape", schema: shape } },
        messages: [{ role: "user", content: "Tell me about Ada Lovelace, born in London in 1815." }]
      })
      const ajv = new Ajv2020({ strict: false })
      addFormats(ajv)
      const value: unknown = JSON.parse(completion.choices[0]!.message.content!)
      expect(ajv.validate(shape, value), JSON.stringify(ajv.errors)).toBe(true)
    })

    it("fills string fields from the prompt", async () => {
      const citySchema = {
        type: "object",
        properties: { city: { type: "string" }, country: { type: "string" }, population: { type: "integer", minimum: 0 } },
        required: ["city", "country", "population"],
        additionalProperties: false
      }
      const completion = await client.chat.completions.create({
        model: "sim-fast",
        response_format: { type: "json_schema", json_schema: { name: "city", schema: citySchema } },
        messages: [{ role: "user", content: "Extract the city: Lyon, in France, has 522000 inhabitants." }]
      })
      const value = JSON.parse(completion.choices[0]!.message.content!) as Record<string, unknown>
      expect(new Ajv().validate(citySchema, value)).toBe(true)
      expect(value).toMatchObject({ city: "Lyon", country: "France" })
      expect(value.population).toBe(522000)
    })

    it("answers json_object with a JSON object", async () => {
      const completion = await client.chat.completions.create({
        model: "sim-smart",
        response_format: { type: "json_object" },
        messages: [{ role: "user", content: `${PROMPT} Reply in JSON.` }]
      })
      expect(JSON.parse(completion.choices[0]!.message.content!)).toEqual({ answer: 391 })
    })

    it("agrees on the same JSON in a consensus with a schema", async () => {
      const report = await consensus(gateway, {
        prompt: PROMPT,
        models: ["sim-fast", "sim-smart"],
        response_format: { type: "json_schema", json_schema: { name: "solution", schema } }
      })
      expect(report.consensus.reached).toBe(true)
      expect((JSON.parse(report.answer.content) as { answer: number }).answer).toBe(391)
    })
  })

  describe("tool calls", () => {
    const argumentsValid = (name: string, args: string) => {
      const tool = [weatherTool, timeTool].find((t) => t.function.name === name)!
      const ajv = new Ajv()
      expect(ajv.validate(tool.function.parameters, JSON.parse(args)), JSON.stringify(ajv.errors)).toBe(true)
    }

    it("calls a tool when tool_choice requires one, with arguments valid for its parameters", async () => {
      const completion = await client.chat.completions.create({
        model: "sim-fast",
        tools: [timeTool, weatherTool],
        tool_choice: "required",
        messages: [{ role: "user", content: "Is it raining in Paris? Check the weather." }]
      })
      expect(validateCompletion(completion)).toEqual([])
      const choice = completion.choices[0]!
      expect(choice.finish_reason).toBe("tool_calls")
      expect(choice.message.content).toBeNull()
      const call = choice.message.tool_calls![0]!
      if (call.type !== "function") throw new Error("expected a function call")
      expect(call.function.name).toBe("get_weather")
      argumentsValid(call.function.name, call.function.arguments)
      expect(JSON.parse(call.function.arguments)).toMatchObject({ city: "Paris" })
    })

    it("calls the tool tool_choice names", async () => {
      const completion = await client.chat.completions.create({
        model: "sim-smart",
        tools: [weatherTool, timeTool],
        tool_choice: { type: "function", function: { name: "get_time" } },
        messages: [{ role: "user", content: "Is it raining in Paris?" }]
      })
      const call = completion.choices[0]!.message.tool_calls![0]!
      if (call.type !== "function") throw new Error("expected a function call")
      expect(call.function.name).toBe("get_time")
      argumentsValid(call.function.name, call.function.arguments)
    })

    it("streams a required tool call in OpenAI's chunk format", async () => {
      const stream = await client.chat.completions.create({
        model: "sim-fast",
        stream: true,
        stream_options: { include_usage: true },
        tools: [weatherTool],
        tool_choice: "required",
        messages: [{ role: "user", content: "What's the weather in Madrid?" }]
      })
      let name = ""
      let args = ""
      let finish: string | null = null
      let pieces = 0
      for await (const chunk of stream) {
        expect(validateChunk(chunk), JSON.stringify(chunk)).toEqual([])
        const choice = chunk.choices[0]
        for (const call of choice?.delta.tool_calls ?? []) {
          expect(call.index).toBe(0)
          name += call.function?.name ?? ""
          args += call.function?.arguments ?? ""
          pieces++
        }
        finish = choice?.finish_reason ?? finish
      }
      expect(name).toBe("get_weather")
      expect(pieces).toBeGreaterThan(2)
      argumentsValid(name, args)
      expect(JSON.parse(args)).toMatchObject({ city: "Madrid" })
      expect(finish).toBe("tool_calls")
    })

    it("assembles with the SDK's stream helper", async () => {
      const final = await client.chat.completions.stream({
        model: "sim-smart",
        tools: [weatherTool],
        tool_choice: { type: "function", function: { name: "get_weather" } },
        messages: [{ role: "user", content: "Weather in Rome?" }]
      }).finalChatCompletion()
      const call = final.choices[0]!.message.tool_calls![0]!
      if (call.type !== "function") throw new Error("expected a function call")
      expect(JSON.parse(call.function.arguments)).toMatchObject({ city: "Rome" })
    })

    it("with tool_choice auto, calls the tool the prompt asks for, answers other prompts, and uses a tool's result", async () => {
      const tools = [weatherTool]
      const asked = await client.chat.completions.create({ model: "sim-fast", tools, messages: [{ role: "user", content: "What's the weather in Oslo?" }] })
      const call = asked.choices[0]!.message.tool_calls?.[0]
      if (call?.type !== "function") throw new Error("expected a function call")
      expect(call.function.name).toBe("get_weather")

      const other = await client.chat.completions.create({ model: "sim-fast", tools, messages: [{ role: "user", content: PROMPT }] })
      expect(other.choices[0]!.finish_reason).toBe("stop")
      expect(numberOf(other.choices[0]!.message.content)).toBe(391)

      const after = await client.chat.completions.create({
        model: "sim-smart",
        tools,
        messages: [
          { role: "user", content: "What's the weather in Oslo?" },
          { role: "assistant", content: null, tool_calls: [call] },
          { role: "tool", tool_call_id: call.id, content: "{\"celsius\": -3, \"sky\": \"snow\"}" }
        ]
      })
      expect(validateCompletion(after)).toEqual([])
      expect(after.choices[0]!.finish_reason).toBe("stop")
      expect(after.choices[0]!.message.content).toContain("get_weather")
      expect(after.choices[0]!.message.content).toContain("snow")
    })

    it("refuses a tool_choice that names no tool of the request, as OpenAI does", async () => {
      const error = await client.chat.completions.create({
        model: "sim-fast",
        tools: [weatherTool],
        tool_choice: { type: "function", function: { name: "get_stock_price" } },
        messages: [{ role: "user", content: "hi" }]
      }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(OpenAI.BadRequestError)
      expect((error as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("tool_choice")
    })
  })

  describe("n", () => {
    it("gives n choices", async () => {
      const completion = await client.chat.completions.create({ model: "sim-smart", n: 2, messages: [{ role: "user", content: PROMPT }] })
      expect(validateCompletion(completion)).toEqual([])
      expect(completion.choices.map((c) => c.index)).toEqual([0, 1])
      for (const choice of completion.choices) expect(numberOf(choice.message.content)).toBe(391)
    })

    it("streams n choices, each to its finish", async () => {
      const stream = await client.chat.completions.create({ model: "sim-fast", n: 3, stream: true, messages: [{ role: "user", content: "Capital of Canada?" }] })
      const texts = ["", "", ""]
      const finishes: Array<string | null> = [null, null, null]
      for await (const chunk of stream) {
        expect(validateChunk(chunk), JSON.stringify(chunk)).toEqual([])
        for (const choice of chunk.choices) {
          texts[choice.index] += choice.delta.content ?? ""
          finishes[choice.index] = choice.finish_reason ?? finishes[choice.index]!
        }
      }
      expect(texts.map((t) => normalize(t).key)).toEqual(["ottawa", "ottawa", "ottawa"])
      expect(finishes).toEqual(["stop", "stop", "stop"])
    })

    it("gives n tool calls", async () => {
      const completion = await client.chat.completions.create({
        model: "sim-fast",
        n: 2,
        tools: [weatherTool],
        tool_choice: "required",
        messages: [{ role: "user", content: "Weather in Bern?" }]
      })
      expect(validateCompletion(completion)).toEqual([])
      expect(completion.choices.map((c) => c.finish_reason)).toEqual(["tool_calls", "tool_calls"])
    })
  })
})

describe("a demo fleet whose sim-mini is always wrong", () => {
  let gateway: RunningGateway
  beforeAll(async () => {
    gateway = await startGateway(stringify(fleetWith("sim-mini", { mistake_rate: 1 })))
  })
  afterAll(() => gateway.close())

  it("still agrees on 391, and says which model was outvoted", async () => {
    const report = await consensus(gateway, { prompt: PROMPT, fanout: 3, early_stop: false })
    expect(report.consensus.reached).toBe(true)
    expect(numberOf(report.answer.content)).toBe(391)
    const mini = report.candidates.find((c) => c.model === "sim-mini")!
    expect([390, 392]).toContain(numberOf(mini.content))
    expect([...report.consensus.supporting_models].sort()).toEqual(["sim-fast", "sim-smart"])
  })

  it("is wrong in JSON too, with JSON still valid against the schema", async () => {
    const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: "unused", maxRetries: 0 })
    const schema = { type: "object", properties: { answer: { type: "integer" } }, required: ["answer"], additionalProperties: false }
    const completion = await client.chat.completions.create({
      model: "sim-mini",
      response_format: { type: "json_schema", json_schema: { name: "a", schema } },
      messages: [{ role: "user", content: PROMPT }]
    })
    const value = JSON.parse(completion.choices[0]!.message.content!) as { answer: number }
    expect(new Ajv().validate(schema, value)).toBe(true)
    expect([390, 392]).toContain(value.answer)
  })
})

describe("a sim model with fixed answers", () => {
  it("says exactly those, whatever the prompt, format or tools", async () => {
    const gateway = await startGateway(`
models:
  - { id: fixed, provider: sim, sim: { latency_ms: 1, answers: ["Paris."] } }
`)
    try {
      const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: "unused", maxRetries: 0 })
      const completion = await client.chat.completions.create({
        model: "fixed",
        n: 2,
        tools: [weatherTool],
        response_format: { type: "json_object" },
        messages: [{ role: "user", content: "What's the weather in Oslo? What is 2 + 2?" }]
      })
      expect(validateCompletion(completion)).toEqual([])
      expect(completion.choices.map((c) => c.message.content)).toEqual(["Paris.", "Paris."])
    } finally {
      await gateway.close()
    }
  })
})
