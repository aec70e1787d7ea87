/**
 * Bounds on a request body's shape, checked before anything recursive touches it.
 *
 * JSON.parse is iterative in V8, but Schema decoding, error formatting and the
 * JSON.stringify that sends a body upstream all recurse: a body nested 10,000 levels
 * deep overflows the stack in any of them. This walk uses its own stack, so a body of
 * any depth is measured safely and refused by name before it reaches them.
 */
import { Either } from "effect"

export interface RequestLimits {
  /** Nesting depth of the JSON body (the body object itself is level 1). */
  readonly maxDepth: number
  /** Entries of `messages`. */
  readonly maxMessages: number
  /** Content parts of one message. */
  readonly maxContentParts: number
  /** Entries of `tools`. */
  readonly maxTools: number
  /** Total length of every string in the body, keys included, in UTF-16 code units. */
  readonly maxStringChars: number
}

/**
 * Generous for real use: a structured-output schema at OpenAI's own limit of 10 nested
 * object levels is about 25 JSON levels deep in a request; OpenAI accepts at most 128 tools.
 */
export const DEFAULT_LIMITS: RequestLimits = {
  maxDepth: 64,
  maxMessages: 2048,
  maxContentParts: 512,
  maxTools: 128,
  maxStringChars: 4 * 1024 * 1024
}

/** The config key of each limit, which errors name so that an operator knows what to raise. */
export const LIMIT_KEYS: { readonly [K in keyof RequestLimits]: string } = {
  maxDepth: "server.limits.max_depth",
  maxMessages: "server.limits.max_messages",
  maxContentParts: "server.limits.max_content_parts",
  maxTools: "server.limits.max_tools",
  maxStringChars: "server.limits.max_string_chars"
}

export interface LimitExceeded {
  readonly limit: keyof RequestLimits
  /** The request field where the limit was passed. */
  readonly param: string
  readonly message: string
}

const exceeded = (limit: keyof RequestLimits, param: string, what: string, value: number, limits: RequestLimits): LimitExceeded => ({
  limit,
  param,
  message: `${what} in '${param}' is ${value}, over the limit of ${limits[limit]} (${LIMIT_KEYS[limit]})`
})

/** Depth and total string size of the whole body, iteratively; stops at the first limit passed. */
const measure = (body: object, limits: RequestLimits): LimitExceeded | undefined => {
  // Each entry: a value, its depth, and the top-level field it sits under (for the error).
  const values: Array<unknown> = [body]
  const depths: Array<number> = [1]
  const fields: Array<string> = [""]
  let chars = 0
  for (;;) {
    // The three stacks grow and shrink together: once they are empty everything is measured.
    const depth = depths.pop()
    const field = fields.pop()
    if (depth === undefined || field === undefined) return undefined
    const value = values.pop()
    if (typeof value === "string") {
      chars += value.length
      if (chars > limits.maxStringChars) {
        return { limit: "maxStringChars", param: field || "body", message: `The strings of the request total more than ${limits.maxStringChars} characters, the limit (${LIMIT_KEYS.maxStringChars})` }
      }
      continue
    }
    if (typeof value !== "object" || value === null) continue
    if (depth > limits.maxDepth) {
      return { limit: "maxDepth", param: field || "body", message: `The request is nested more than ${limits.maxDepth} levels deep under '${field}', the limit (${LIMIT_KEYS.maxDepth})` }
    }
    if (Array.isArray(value)) {
      for (const item of value) {
        values.push(item)
        depths.push(depth + 1)
        fields.push(field)
      }
      continue
    }
    for (const key of Object.keys(value)) {
      chars += key.length
      values.push((value as Record<string, unknown>)[key])
      depths.push(depth + 1)
      fields.push(depth === 1 ? key : field)
    }
  }
}

/** The counted lists: messages, each message's content parts, tools. */
const count = (body: Record<string, unknown>, limits: RequestLimits): LimitExceeded | undefined => {
  const { messages, tools } = body
  if (Array.isArray(messages)) {
    if (messages.length > limits.maxMessages) return exceeded("maxMessages", "messages", "The number of messages", messages.length, limits)
    for (const [i, message] of messages.entries()) {
      const content = typeof message === "object" && message !== null ? (message as { content?: unknown }).content : undefined
      if (Array.isArray(content) && content.length > limits.maxContentParts) {
        return exceeded("maxContentParts", `messages[${i}].content`, "The number of content parts", content.length, limits)
      }
    }
  }
  if (Array.isArray(tools) && tools.length > limits.maxTools) return exceeded("maxTools", "tools", "The number of tools", tools.length, limits)
  return undefined
}

/** The first limit a parsed body passes, if any. Safe on a body of any depth. */
export const checkLimits = (body: Record<string, unknown>, limits: RequestLimits): Either.Either<Record<string, unknown>, LimitExceeded> => {
  const problem = measure(body, limits) ?? count(body, limits)
  return problem === undefined ? Either.right(body) : Either.left(problem)
}
