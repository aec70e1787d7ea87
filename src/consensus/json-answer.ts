/**
 * JSON answers: a model's reply as the JSON value it holds (a fenced ```json block or bare
 * JSON), and JSON schemas compiled once. The engine checks a request's schema before any
 * call and reports parsed answers; the json_schema evaluator (evaluators/) gates on them.
 * Here, below both, so that the engine never imports from the plug-in folder.
 */
import Ajv, { type ValidateFunction } from "ajv"
import { Either } from "effect"
import { canonicalJson } from "./normalize"

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
    const oldest = compiled.keys().next()
    if (compiled.size >= MAX_CACHED && oldest.done !== true) compiled.delete(oldest.value)
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
