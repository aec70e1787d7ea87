/**
 * JSON request bodies, read under the size limit and validated. Every rejection names
 * what is wrong; nothing rejected here reaches an upstream.
 */
import { HttpServerRequest } from "@effect/platform"
import { Effect, type ParseResult, type Schema } from "effect"
import { firstIssue } from "../config/paths"
import { ChatCompletionRequest } from "../protocol/chat-request"
import { validator } from "../protocol/validate"
import { InvalidRequest, PayloadTooLarge } from "./errors"
import { readBody } from "./read-body"

/**
 * A reader for bodies of one schema. Unknown fields stay on the value: chat requests
 * forward them to OpenAI-compatible upstreams, consensus requests to every model.
 */
export const jsonBodyReader = <A extends object>(schema: Schema.Schema<A, A>) => {
  const check = validator(schema)
  return (maxBytes: number) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const declared = Number(request.headers["content-length"])
      if (declared > maxBytes) return yield* new PayloadTooLarge({ limit: maxBytes })
      const text = yield* readBody(request, maxBytes)
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch (error) {
        return yield* new InvalidRequest({
          message: `The request body is not valid JSON (${(error as Error).message})`,
          param: null,
          code: "invalid_json"
        })
      }
      if (typeof json !== "object" || json === null || Array.isArray(json)) {
        return yield* new InvalidRequest({ message: "The request body must be a JSON object", param: null, code: "invalid_json" })
      }
      const checked = check(json)
      if (checked._tag === "Right") return checked.right
      return yield* invalidField(checked.left)
    })
}

export const readChatRequest = jsonBodyReader(ChatCompletionRequest)

const invalidField = (error: ParseResult.ParseError) => {
  const issue = firstIssue(error)
  const message = issue.message === "is missing"
    ? `Missing required parameter: '${issue.path}'`
    : `Invalid value for '${issue.path}': ${abbreviate(issue.message)}`
  return new InvalidRequest({ message, param: issue.path, code: issue.message === "is missing" ? "missing_required_parameter" : "invalid_value" })
}

/** Schema's messages print whole expected types; the start says what matters. */
const abbreviate = (message: string): string => (message.length > 300 ? `${message.slice(0, 300)}…` : message)
