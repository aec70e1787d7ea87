/**
 * The last touches HttpApi cannot make to the OpenAPI document (api.ts): HttpApi declares
 * its own decoding error (400, HttpApiDecodeError) on every route, which no route here
 * answers with, since every error has OpenAI's shape; error responses say what each
 * status means on this gateway; and a virtual key is optional on an open gateway.
 */
import { AnthropicErrorBody } from "../ingress/anthropic/errors"
import { JSONSchema } from "effect"
import { ErrorBody } from "../protocol/error-body"

/** What each error status means, from the README's error table. */
const ERRORS: Record<string, string> = {
  "400": "Invalid request, naming the field or query parameter in `param`; a field the provider cannot take; the upstream said the request itself is wrong",
  "401": "invalid_api_key: no key where one is needed, an unknown or revoked one; a wrong admin key, or the admin API is off",
  "403": "model_not_allowed: the key may not use a model the request needs",
  "404": "Unknown model or route (model_not_found; a model the key may not use too), unknown key id (key_not_found), unknown request id (request_not_found)",
  "413": "The body is over server.max_body_bytes",
  "429": "rate_limit_exceeded (the key's or the upstream's rate limit, with retry-after), or insufficient_quota (the key's budget is spent or reserved)",
  "500": "internal_error: a defect, logged under the request id the message gives",
  "502": "Upstream failure: server error, malformed response, connection refused, cut stream, key refused; no model of a consensus answered",
  "503": "Upstream overloaded, or every model behind the name is cooling down (retry-after); spend_store_unavailable: the spend database cannot be reached",
  "504": "Upstream timeout"
}

type Json = Record<string, unknown>

const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value)

const mentions = (node: unknown, ref: string): boolean =>
  Array.isArray(node) ? node.some((n) => mentions(n, ref)) : isObject(node) && (node.$ref === ref || Object.values(node).some((v) => mentions(v, ref)))

/** A response schema without HttpApi's decode error: a union loses that member, a schema that was only it goes. */
const withoutDecodeError = (schema: unknown): unknown => {
  const ref = "#/components/schemas/HttpApiDecodeError"
  if (!mentions(schema, ref)) return schema
  if (isObject(schema) && Array.isArray(schema.anyOf)) {
    const rest = schema.anyOf.filter((member) => !mentions(member, ref))
    return rest.length === 0 ? undefined : rest.length === 1 ? rest[0] : { ...schema, anyOf: rest }
  }
  return undefined
}

const refsIn = (node: unknown, into: Set<string>): Set<string> => {
  if (Array.isArray(node)) node.forEach((n) => refsIn(n, into))
  else if (isObject(node)) {
    if (typeof node.$ref === "string") into.add(node.$ref.replace("#/components/schemas/", ""))
    Object.values(node).forEach((v) => refsIn(v, into))
  }
  return into
}

/** Components nothing refers to any more (the decode error and its parts) are dropped. */
const pruneSchemas = (spec: Json) => {
  const components = spec.components as { schemas: Json }
  const used = refsIn(spec.paths, new Set())
  for (let grew = true; grew;) {
    grew = false
    for (const name of [...used]) {
      for (const ref of refsIn(components.schemas[name], new Set())) {
        if (!used.has(ref)) {
          used.add(ref)
          grew = true
        }
      }
    }
  }
  components.schemas = Object.fromEntries(Object.entries(components.schemas).filter(([name]) => used.has(name)))
}

const ERROR_REF = { $ref: "#/components/schemas/ErrorResponse" }
const ANTHROPIC_ERROR_REF = { $ref: "#/components/schemas/AnthropicErrorResponse" }

/** The envelope an operation's errors come in: Anthropic's on /v1/messages, OpenAI's everywhere else. */
const errorRefOf = (schema: unknown) => (JSON.stringify(schema).includes("AnthropicErrorResponse") ? ANTHROPIC_ERROR_REF : ERROR_REF)

/** OpenAI's error envelope, once, for every error response and the streams' error event to refer to. */
const errorSchema = (): Json => {
  const { $schema: _, ...schema } = JSONSchema.make(ErrorBody) as unknown as Json
  return { ...schema, description: "OpenAI's error shape: every error Quorum answers with has it" }
}

const fixOperation = (operation: Json) => {
  const responses = operation.responses as Record<string, { description: string; content?: Record<string, { schema?: unknown }> }>
  for (const [status, response] of Object.entries(responses)) {
    const json = response.content?.["application/json"]
    if (json === undefined) continue
    const schema = withoutDecodeError(json.schema)
    if (schema === undefined) delete responses[status]
    else if (Number(status) >= 400) responses[status] = { description: ERRORS[status] ?? "Error", content: { "application/json": { schema: errorRefOf(json.schema) } } }
    else json.schema = schema
  }
  const security = operation.security as Array<Json>
  // Optional on an open gateway (the default on a loopback address): no requirement is one of the choices.
  if (security.some((s) => "virtualKey" in s)) security.push({})
}

export const openApiDocument = (spec: Json): Json => {
  for (const path of Object.values(spec.paths as Record<string, Record<string, Json>>)) {
    for (const operation of Object.values(path)) fixOperation(operation)
  }
  ;(spec.components as { schemas: Json }).schemas.ErrorResponse = errorSchema()
  const { $schema: _, ...anthropic } = JSONSchema.make(AnthropicErrorBody) as unknown as Json
  ;(spec.components as { schemas: Json }).schemas.AnthropicErrorResponse = { ...anthropic, description: "Anthropic's error envelope, on /v1/messages" }
  pruneSchemas(spec)
  return spec
}
