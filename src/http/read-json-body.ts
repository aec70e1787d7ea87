/**
 * JSON request bodies, read under the size limit and validated. Every rejection names
 * what is wrong; nothing rejected here reaches an upstream.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { Effect, Either, type ParseResult, type Schema } from "effect"
import { firstIssue } from "../config/paths"
import { ChatCompletionRequest } from "../protocol/chat-request"
import { checkLimits, DEFAULT_LIMITS, LIMIT_KEYS, type LimitExceeded, type RequestLimits } from "../protocol/limits"
import { validator } from "../protocol/validate"
import { InvalidRequest, PayloadTooLarge } from "./errors"
import { type ReceivedBody, readBodyAs } from "./read-body"

/** A body's size in bytes, and the limits on its shape (server.max_body_bytes and server.limits). */
export interface BodyBounds {
  readonly maxBodyBytes: number
  readonly limits: RequestLimits
}

/**
 * A reader for bodies of one schema. Unknown fields stay on the value: chat requests
 * forward them to OpenAI-compatible upstreams, consensus requests to every model. The
 * body's shape is bounded (depth, list lengths, string size) before the schema, or
 * anything else that recurses, looks at it. A bare byte limit keeps the default shape limits.
 */
export const jsonBodyReader = <A extends object>(schema: Schema.Schema<A, A>) => {
  const decode = decodeBody(validator(schema))
  return (bounds: number | BodyBounds) => {
    const { maxBodyBytes, limits } = typeof bounds === "number" ? { maxBodyBytes: bounds, limits: DEFAULT_LIMITS } : bounds
    return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      readBodyAs(NodeHttpServerRequest.toIncomingMessage(request), maxBodyBytes, (text) => decode(text, limits)))
  }
}

/**
 * A body's text as a value of the schema: JSON, an object, within the shape limits, valid.
 * Plain, so that it runs in the read's own step (see readBodyAs).
 */
const decodeBody = <A extends object>(check: (input: unknown) => Either.Either<A, ParseResult.ParseError>) =>
(text: string, limits: RequestLimits): Either.Either<A, InvalidRequest> => {
  let json: unknown
  try {
    // V8's JSON.parse uses its own stack (a million levels parse fine): the depth is bounded just below.
    json = JSON.parse(text)
  } catch (error) {
    return Either.left(new InvalidRequest({ message: `The request body is not valid JSON (${(error as Error).message})`, param: null, code: "invalid_json" }))
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return Either.left(new InvalidRequest({ message: "The request body must be a JSON object", param: null, code: "invalid_json" }))
  }
  const bounded = checkLimits(json as Record<string, unknown>, limits)
  if (Either.isLeft(bounded)) return Either.left(overLimit(bounded.left))
  return Either.mapLeft(check(json), invalidField)
}

/**
 * The same for the hot routes, whose body the front door has read before their fiber
 * starts (hot/front-door.ts, under server.max_body_bytes): a plain check of its text.
 */
export const jsonBodyParser = <A extends object>(schema: Schema.Schema<A, A>) => {
  const decode = decodeBody(validator(schema))
  return (body: ReceivedBody, bounds: { readonly limits: RequestLimits }): Effect.Effect<A, InvalidRequest | PayloadTooLarge> =>
    // The client left before its body was whole: the request ends as any whose client leaves (metered records a 499).
    body.text === undefined ? Effect.interrupt : Either.flatMap(body.text, (text) => decode(text, bounds.limits))
}

export const readChatRequest = jsonBodyParser(ChatCompletionRequest)

const invalidField = (error: ParseResult.ParseError) => {
  const issue = firstIssue(error)
  const message = issue.message === "is missing"
    ? `Missing required parameter: '${issue.path}'`
    : `Invalid value for '${issue.path}': ${abbreviate(issue.message)}`
  return new InvalidRequest({ message, param: issue.path, code: issue.message === "is missing" ? "missing_required_parameter" : "invalid_value" })
}

const overLimit = (problem: LimitExceeded) =>
  new InvalidRequest({ message: problem.message, param: problem.param, code: `${LIMIT_KEYS[problem.limit].split(".").pop()}_exceeded` })

/** Schema's messages print whole expected types; the start says what matters. */
const abbreviate = (message: string): string => (message.length > 300 ? `${message.slice(0, 300)}…` : message)
