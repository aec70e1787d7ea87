/**
 * Anthropic's Messages API as clients send it to Quorum (`POST /v1/messages`), per
 * https://docs.anthropic.com/en/api/messages. Wider than what the Anthropic provider
 * adapter sends upstream (providers/anthropic/wire.ts): content as a string or blocks,
 * system as blocks, tool results with blocks, and fields Quorum accepts but does not use
 * (cache_control, thinking, service_tier, top_k). Block and tool types Quorum cannot
 * carry to every provider are refused by name in to-chat.ts rather than here, so the
 * error says what to change.
 */
import { Schema } from "effect"
import { EXACT_JSON_SCHEMA } from "../../protocol/validate"

const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })

export const TextBlockParam = Schema.Struct({ type: Schema.Literal("text"), text: Schema.String })

export const ImageBlockParam = Schema.Struct({
  type: Schema.Literal("image"),
  source: Schema.Union(
    Schema.Struct({ type: Schema.Literal("base64"), media_type: Schema.String, data: Schema.String }),
    Schema.Struct({ type: Schema.Literal("url"), url: Schema.String }),
    Schema.Struct({ type: Schema.Literal("file"), file_id: Schema.String })
  )
})

export const DocumentBlockParam = Schema.Struct({
  type: Schema.Literal("document"),
  source: Schema.Struct({ type: Schema.String, media_type: Schema.optional(Schema.String), data: Schema.optional(Schema.String), url: Schema.optional(Schema.String) }),
  title: Schema.optional(Schema.NullOr(Schema.String))
})

export const ToolUseBlockParam = Schema.Struct({ type: Schema.Literal("tool_use"), id: Schema.String, name: Schema.String, input: Schema.Unknown })

export const ToolResultBlockParam = Schema.Struct({
  type: Schema.Literal("tool_result"),
  tool_use_id: Schema.String,
  content: Schema.optional(Schema.Union(Schema.String, Schema.Array(Schema.Struct({ type: Schema.String, text: Schema.optional(Schema.String) })))),
  is_error: Schema.optional(Schema.Boolean)
})

/** Any other block (thinking, server tool results, …): kept by type so to-chat.ts can say which it cannot carry. */
const KNOWN_BLOCKS: ReadonlyArray<string> = ["text", "image", "document", "tool_use", "tool_result"]
export const OtherBlockParam = Schema.Struct({
  type: Schema.String.pipe(Schema.filter((t) => !KNOWN_BLOCKS.includes(t), { jsonSchema: { not: { enum: KNOWN_BLOCKS } }, [EXACT_JSON_SCHEMA]: true }))
})

export const ContentBlockParam = Schema.Union(TextBlockParam, ImageBlockParam, DocumentBlockParam, ToolUseBlockParam, ToolResultBlockParam, OtherBlockParam)
export type ContentBlockParam = typeof ContentBlockParam.Type

export const MessageParam = Schema.Struct({
  role: Schema.Literal("user", "assistant"),
  content: Schema.Union(Schema.String, Schema.Array(ContentBlockParam))
})
export type MessageParam = typeof MessageParam.Type

export const ToolParam = Schema.Struct({
  /** Absent or `custom` for a client tool; anything else is one of Anthropic's server tools. */
  type: Schema.optional(Schema.NullOr(Schema.String)),
  name: Schema.String.pipe(Schema.minLength(1)),
  description: Schema.optional(Schema.String),
  input_schema: Schema.optional(JsonObject),
  strict: Schema.optional(Schema.Boolean)
})

export const ToolChoiceParam = Schema.Struct({
  type: Schema.Literal("auto", "any", "tool", "none"),
  name: Schema.optional(Schema.String),
  disable_parallel_tool_use: Schema.optional(Schema.Boolean)
})

export const MessagesRequest = Schema.Struct({
  model: Schema.String.pipe(Schema.minLength(1)),
  max_tokens: Schema.Int.pipe(Schema.positive()),
  messages: Schema.Array(MessageParam).pipe(Schema.minItems(1)),
  system: Schema.optional(Schema.Union(Schema.String, Schema.Array(TextBlockParam))),
  stop_sequences: Schema.optional(Schema.Array(Schema.String)),
  temperature: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
  top_p: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
  top_k: Schema.optional(Schema.Int),
  stream: Schema.optional(Schema.Boolean),
  tools: Schema.optional(Schema.Array(ToolParam)),
  tool_choice: Schema.optional(ToolChoiceParam),
  metadata: Schema.optional(Schema.Struct({ user_id: Schema.optional(Schema.NullOr(Schema.String)) }))
})
export type MessagesRequest = typeof MessagesRequest.Type
