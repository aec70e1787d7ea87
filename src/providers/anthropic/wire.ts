/** Anthropic Messages API wire types (https://docs.anthropic.com/en/api/messages). */
import { Schema } from "effect"

const Json = Schema.Record({ key: Schema.String, value: Schema.Unknown })

export const TextBlock = Schema.Struct({ type: Schema.Literal("text"), text: Schema.String })
export const ToolUseBlock = Schema.Struct({
  type: Schema.Literal("tool_use"),
  id: Schema.String,
  name: Schema.String,
  input: Schema.Unknown
})
export const ImageBlock = Schema.Struct({
  type: Schema.Literal("image"),
  source: Schema.Union(
    Schema.Struct({ type: Schema.Literal("base64"), media_type: Schema.String, data: Schema.String }),
    Schema.Struct({ type: Schema.Literal("url"), url: Schema.String })
  )
})
export const ToolResultBlock = Schema.Struct({
  type: Schema.Literal("tool_result"),
  tool_use_id: Schema.String,
  content: Schema.String
})

export const RequestBlock = Schema.Union(TextBlock, ToolUseBlock, ImageBlock, ToolResultBlock)
export type RequestBlock = typeof RequestBlock.Type

export const MessagesRequest = Schema.Struct({
  model: Schema.String,
  max_tokens: Schema.Number,
  messages: Schema.Array(Schema.Struct({
    role: Schema.Literal("user", "assistant"),
    content: Schema.Array(RequestBlock)
  })),
  system: Schema.optional(Schema.String),
  stop_sequences: Schema.optional(Schema.Array(Schema.String)),
  temperature: Schema.optional(Schema.Number),
  top_p: Schema.optional(Schema.Number),
  stream: Schema.optional(Schema.Boolean),
  tools: Schema.optional(Schema.Array(Schema.Struct({
    name: Schema.String,
    description: Schema.optional(Schema.String),
    input_schema: Json
  }))),
  tool_choice: Schema.optional(Schema.Struct({
    type: Schema.Literal("auto", "any", "tool", "none"),
    name: Schema.optional(Schema.String),
    disable_parallel_tool_use: Schema.optional(Schema.Boolean)
  })),
  metadata: Schema.optional(Schema.Struct({ user_id: Schema.String }))
})
export type MessagesRequest = typeof MessagesRequest.Type

export const AnthropicUsage = Schema.Struct({
  input_tokens: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  output_tokens: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  cache_creation_input_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
  cache_read_input_tokens: Schema.optional(Schema.NullOr(Schema.Number))
})
export type AnthropicUsage = typeof AnthropicUsage.Type

/** Response blocks Quorum does not translate (thinking, server tools) decode as Other. */
const OtherBlock = Schema.Struct({ type: Schema.String })
export const ResponseBlock = Schema.Union(TextBlock, ToolUseBlock, OtherBlock)
export type ResponseBlock = typeof ResponseBlock.Type

export const StopReason = Schema.NullOr(Schema.String)

export const MessagesResponse = Schema.Struct({
  id: Schema.String,
  type: Schema.Literal("message"),
  role: Schema.Literal("assistant"),
  model: Schema.String,
  content: Schema.Array(ResponseBlock),
  stop_reason: StopReason,
  usage: AnthropicUsage
})
export type MessagesResponse = typeof MessagesResponse.Type

export const ErrorEnvelope = Schema.Struct({
  type: Schema.Literal("error"),
  error: Schema.Struct({ type: Schema.String, message: Schema.String })
})

export const StreamEvent = Schema.Union(
  Schema.Struct({
    type: Schema.Literal("message_start"),
    message: Schema.Struct({ id: Schema.String, model: Schema.String, usage: AnthropicUsage })
  }),
  Schema.Struct({ type: Schema.Literal("content_block_start"), index: Schema.Number, content_block: ResponseBlock }),
  Schema.Struct({
    type: Schema.Literal("content_block_delta"),
    index: Schema.Number,
    delta: Schema.Union(
      Schema.Struct({ type: Schema.Literal("text_delta"), text: Schema.String }),
      Schema.Struct({ type: Schema.Literal("input_json_delta"), partial_json: Schema.String }),
      Schema.Struct({ type: Schema.String })
    )
  }),
  Schema.Struct({ type: Schema.Literal("content_block_stop"), index: Schema.Number }),
  Schema.Struct({
    type: Schema.Literal("message_delta"),
    delta: Schema.Struct({ stop_reason: Schema.optional(StopReason) }),
    usage: Schema.optional(Schema.Struct({ output_tokens: Schema.optional(Schema.Number) }))
  }),
  Schema.Struct({ type: Schema.Literal("message_stop") }),
  Schema.Struct({ type: Schema.Literal("ping") }),
  Schema.Struct({ type: Schema.Literal("error"), error: Schema.Struct({ type: Schema.String, message: Schema.String }) })
)
export type StreamEvent = typeof StreamEvent.Type
