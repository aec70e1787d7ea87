/**
 * json_schema: a gate. Each candidate's content (a fenced ```json block or bare JSON) is
 * parsed and validated with ajv against `options.schema`, else the request's
 * `response_format.json_schema.schema`; with neither, valid JSON passes. Invalid answers
 * score 0 and are excluded from the vote.
 */
import Ajv, { type ValidateFunction } from "ajv"
import { Either } from "effect"
import type { Evaluator } from "../src/consensus/evaluator"
import { canonicalJson } from "../src/consensus/normalize"

const ajv = new Ajv({ allErrors: false, strict: false })

// Compiling is the expensive part; requests in a consensus workload reuse few schemas.
const compiled = new Map<string, ValidateFunction>()
const MAX_CACHED = 256

/** A validator for a JSON schema, or why the schema is not one (for a 400 before any call). */
export const compileSchema = (schema: unknown): Either.Either<ValidateFunction, string> => {
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) return Either.left("a JSON schema must be an object")
  const key = canonicalJson(schema)
  const cached = compiled.get(key)
  if (cached !== undefined) return Either.right(cached)
  try {
    const validate = ajv.compile(schema)
    if (compiled.size >= MAX_CACHED) compiled.delete(compiled.keys().next().value!)
    compiled.set(key, validate)
    return Either.right(validate)
  } catch (error) {
    return Either.left(error instanceof Error ? error.message : String(error))
  }
}

const FENCED_JSON = /^```(?:json)?[ \t]*\r?\n([\s\S]*?)\r?\n?```\s*$/i

export const parseJsonAnswer = (content: string): { ok: true; value: unknown } | { ok: false } => {
  const text = FENCED_JSON.exec(content.trim())?.[1] ?? content
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch {
    return { ok: false }
  }
}

const evaluator: Evaluator = {
  name: "json_schema",
  description: "Gate: the answer is JSON that validates against the request's JSON schema",
  gate: true,
  evaluate: ({ request, candidates, options }) => {
    const format = request.response_format
    const schema = options.schema ?? (format?.type === "json_schema" ? format.json_schema.schema : undefined)
    const validate = schema === undefined ? undefined : compileSchema(schema)
    if (validate !== undefined && Either.isLeft(validate)) throw new Error(`invalid JSON schema: ${validate.left}`)
    return candidates.map((c) => {
      // A tool call is not the answer response_format describes.
      if (c.tool_calls !== undefined) return 1
      const parsed = parseJsonAnswer(c.content)
      if (!parsed.ok) return 0
      return validate === undefined || validate.right(parsed.value) ? 1 : 0
    })
  }
}

export default evaluator
