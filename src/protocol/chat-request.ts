/**
 * The OpenAI chat-completions request, as Quorum reads it. OpenAI's wire format is the
 * gateway's lingua franca: every provider adapter translates from it and back to it.
 *
 * Only the fields Quorum interprets are declared; decoding preserves the rest so that
 * OpenAI-compatible upstreams receive parameters this gateway has never heard of.
 */
import { Schema } from "effect"
import { EXACT_JSON_SCHEMA } from "./validate"

const NonEmptyString = Schema.String.pipe(Schema.minLength(1))

/** OpenAI's content arrays hold at least one part. */
const Parts = <A, I, R>(part: Schema.Schema<A, I, R>) => Schema.Array(part).pipe(Schema.minItems(1))

export const TextPart = Schema.Struct({
  type: Schema.Literal("text"),
  text: Schema.String
})
export type TextPart = typeof TextPart.Type

export const ImagePart = Schema.Struct({
  type: Schema.Literal("image_url"),
  image_url: Schema.Struct({
    // OpenAI's schema says `format: uri`: an absolute URL (https:, data:, …), never a bare path.
    url: Schema.String.pipe(Schema.pattern(/^[A-Za-z][A-Za-z0-9+.-]*:/, { message: () => "an absolute URL (https:… or data:…)" })),
    detail: Schema.optional(Schema.Literal("auto", "low", "high"))
  })
})
export type ImagePart = typeof ImagePart.Type

export const AudioPart = Schema.Struct({
  type: Schema.Literal("input_audio"),
  input_audio: Schema.Struct({ data: Schema.String, format: Schema.Literal("wav", "mp3") })
})

export const FilePart = Schema.Struct({
  type: Schema.Literal("file"),
  file: Schema.Struct({
    file_data: Schema.optional(Schema.String),
    file_id: Schema.optional(Schema.String),
    filename: Schema.optional(Schema.String)
  })
})

export const RefusalPart = Schema.Struct({
  type: Schema.Literal("refusal"),
  refusal: Schema.String
})

export const UserContentPart = Schema.Union(TextPart, ImagePart, AudioPart, FilePart)
export type UserContentPart = typeof UserContentPart.Type

export const ToolCall = Schema.Struct({
  id: Schema.String,
  type: Schema.Literal("function"),
  function: Schema.Struct({ name: Schema.String, arguments: Schema.String })
})
export type ToolCall = typeof ToolCall.Type

const TextContent = Schema.Union(Schema.String, Parts(TextPart))

export const SystemMessage = Schema.Struct({
  role: Schema.Literal("system", "developer"),
  content: TextContent,
  name: Schema.optional(Schema.String)
})
export type SystemMessage = typeof SystemMessage.Type

export const UserMessage = Schema.Struct({
  role: Schema.Literal("user"),
  content: Schema.Union(Schema.String, Parts(UserContentPart)),
  name: Schema.optional(Schema.String)
})
export type UserMessage = typeof UserMessage.Type

export const AssistantMessage = Schema.Struct({
  role: Schema.Literal("assistant"),
  content: Schema.optional(
    Schema.NullOr(Schema.Union(Schema.String, Parts(Schema.Union(TextPart, RefusalPart))))
  ),
  refusal: Schema.optional(Schema.NullOr(Schema.String)),
  tool_calls: Schema.optional(Schema.Array(ToolCall)),
  name: Schema.optional(Schema.String)
})
export type AssistantMessage = typeof AssistantMessage.Type

export const ToolMessage = Schema.Struct({
  role: Schema.Literal("tool"),
  content: TextContent,
  tool_call_id: Schema.String
})
export type ToolMessage = typeof ToolMessage.Type

export const Message = Schema.Union(SystemMessage, UserMessage, AssistantMessage, ToolMessage)
export type Message = typeof Message.Type

export const FunctionTool = Schema.Struct({
  type: Schema.Literal("function"),
  function: Schema.Struct({
    name: NonEmptyString,
    description: Schema.optional(Schema.String),
    parameters: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
    strict: Schema.optional(Schema.NullOr(Schema.Boolean))
  })
})
export type FunctionTool = typeof FunctionTool.Type

export const ToolChoice = Schema.Union(
  Schema.Literal("none", "auto", "required"),
  Schema.Struct({
    type: Schema.Literal("function"),
    function: Schema.Struct({ name: Schema.String })
  })
)
export type ToolChoice = typeof ToolChoice.Type

export const ResponseFormat = Schema.Union(
  Schema.Struct({ type: Schema.Literal("text") }),
  Schema.Struct({ type: Schema.Literal("json_object") }),
  Schema.Struct({
    type: Schema.Literal("json_schema"),
    json_schema: Schema.Struct({
      name: NonEmptyString,
      description: Schema.optional(Schema.String),
      schema: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
      strict: Schema.optional(Schema.NullOr(Schema.Boolean))
    })
  })
)
export type ResponseFormat = typeof ResponseFormat.Type

const Probability = Schema.Number.pipe(Schema.between(0, 1))
const Penalty = Schema.Number.pipe(Schema.between(-2, 2))
const PositiveInt = Schema.Int.pipe(Schema.positive())

/** Token ids as OpenAI's tokenizers number them, written as JSON object keys. */
const TOKEN_ID = /^(0|[1-9][0-9]{0,9})$/

/** Token id → a bias from -100 to 100 (OpenAI's documented range; its schema says only "integer"). */
export const LogitBias = Schema.Record({ key: Schema.String, value: Schema.Int.pipe(Schema.between(-100, 100)) }).pipe(
  // A Record with a refined key skips keys that do not match instead of refusing them.
  Schema.filter((bias) => Object.keys(bias).every((key) => TOKEN_ID.test(key)) || "keys must be token ids (non-negative integers)", {
    jsonSchema: { propertyNames: { pattern: TOKEN_ID.source } },
    [EXACT_JSON_SCHEMA]: true
  })
)

/** One stop sequence, or up to 4. */
export const Stop = Schema.Union(Schema.String, Schema.Array(Schema.String).pipe(Schema.minItems(1), Schema.maxItems(4)))

/**
 * The sampling and tool fields, checked against OpenAI's CreateChatCompletionRequest
 * (test/openai-constraints.test.ts holds them to the published schema). A chat request and
 * a consensus request share them, and a consensus sends them to every model: both
 * endpoints refuse the same values, so nothing invalid reaches an upstream from either.
 */
export const SamplingFields = {
  max_tokens: Schema.optional(Schema.NullOr(PositiveInt)),
  max_completion_tokens: Schema.optional(Schema.NullOr(PositiveInt)),
  temperature: Schema.optional(Schema.NullOr(Schema.Number.pipe(Schema.between(0, 2)))),
  top_p: Schema.optional(Schema.NullOr(Probability)),
  n: Schema.optional(Schema.NullOr(Schema.Int.pipe(Schema.between(1, 128)))),
  stop: Schema.optional(Schema.NullOr(Stop)),
  seed: Schema.optional(Schema.NullOr(Schema.Int)),
  presence_penalty: Schema.optional(Schema.NullOr(Penalty)),
  frequency_penalty: Schema.optional(Schema.NullOr(Penalty)),
  logit_bias: Schema.optional(Schema.NullOr(LogitBias)),
  logprobs: Schema.optional(Schema.NullOr(Schema.Boolean)),
  // Not nullable: CreateModelResponseProperties, which the request extends, says integer only.
  top_logprobs: Schema.optional(Schema.Int.pipe(Schema.between(0, 20))),
  tools: Schema.optional(Schema.Array(FunctionTool)),
  tool_choice: Schema.optional(ToolChoice),
  parallel_tool_calls: Schema.optional(Schema.Boolean),
  user: Schema.optional(Schema.String),
  metadata: Schema.optional(Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.String }))),
  store: Schema.optional(Schema.NullOr(Schema.Boolean)),
  safety_identifier: Schema.optional(Schema.NullOr(Schema.String.pipe(Schema.maxLength(64)))),
  prompt_cache_key: Schema.optional(Schema.NullOr(Schema.String))
}

export const ChatCompletionRequest = Schema.Struct({
  model: NonEmptyString,
  messages: Schema.Array(Message).pipe(Schema.minItems(1)),
  stream: Schema.optional(Schema.NullOr(Schema.Boolean)),
  stream_options: Schema.optional(
    Schema.NullOr(Schema.Struct({ include_usage: Schema.optional(Schema.Boolean) }))
  ),
  ...SamplingFields,
  response_format: Schema.optional(ResponseFormat)
})
export type ChatCompletionRequest = typeof ChatCompletionRequest.Type

/** The completion-token ceiling a caller asked for, under either of OpenAI's two names. */
export const maxOutputTokens = (request: ChatCompletionRequest): number | undefined =>
  request.max_completion_tokens ?? request.max_tokens ?? undefined

/** Plain text of a message's content, parts joined; non-text parts are not text. */
export const contentText = (content: Message["content"]): string => {
  if (content === undefined || content === null) return ""
  if (typeof content === "string") return content
  return content.map((part) => (part.type === "text" ? part.text : "")).join("")
}
