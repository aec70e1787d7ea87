/**
 * Validators for OpenAI's published component schemas (test/fixtures/openai/chat-schemas.json,
 * copied from OpenAI's OpenAPI spec; see the README there): every response and chunk the
 * gateway sends is checked against them, and so is every request a fake upstream receives.
 */
import Ajv from "ajv"
import addFormats from "ajv-formats"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

const path = fileURLToPath(new URL("../fixtures/openai/chat-schemas.json", import.meta.url))

const { schemas } = JSON.parse(readFileSync(path, "utf8")) as { schemas: Record<string, unknown> }

/** OpenAPI 3.0's `nullable` in JSON Schema terms, as ajv reads it. */
const nullableToAnyOf = (node: unknown): unknown => {
  if (Array.isArray(node)) return node.map(nullableToAnyOf)
  if (typeof node !== "object" || node === null) return node
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(node)) out[key] = nullableToAnyOf(value)
  // OpenAPI lets null through a nullable enum; ajv wants it listed.
  if (out.nullable === true && Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null]
  if (out.nullable === true && out.type === undefined) {
    delete out.nullable
    return { anyOf: [out, { type: "null" }] }
  }
  return out
}

// OpenAPI 3.0 style: `nullable`, and vendor keywords that are not JSON Schema.
const ajv = new Ajv({ strict: false, allErrors: true })
addFormats(ajv)
ajv.addFormat("unixtime", { type: "number", validate: (n: number) => Number.isInteger(n) })
ajv.addSchema({ $id: "openai", components: { schemas: nullableToAnyOf(schemas) } })

const validator = (name: string) => {
  const validate = ajv.getSchema(`openai#/components/schemas/${name}`)
  if (validate === undefined) throw new Error(`no schema ${name} in ${path}`)
  return (value: unknown): string[] => (validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`))
}

export const validateCompletion = validator("CreateChatCompletionResponse")
export const validateChunk = validator("CreateChatCompletionStreamResponse")
export const validateError = validator("ErrorResponse")
export const validateModelList = validator("ListModelsResponse")
/** What an upstream receives: a request OpenAI itself would accept. */
export const validateChatRequest = validator("CreateChatCompletionRequest")
