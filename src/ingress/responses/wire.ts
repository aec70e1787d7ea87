/**
 * OpenAI's Responses API request as clients send it to Quorum (`POST /v1/responses`), per
 * ResponseCreateParams in the `openai` SDK (resources/responses/responses.d.ts). Only what
 * can be carried to a chat completion is declared in detail; item, part, tool and
 * tool-choice kinds Quorum cannot carry are kept by their type so that to-chat.ts refuses
 * them by name, and fields outside this schema are refused there too. Decoded and encoded
 * forms are the same (no transformations), so the gateway's jsonBodyReader can read it.
 */
import { Schema } from "effect"
import { EXACT_JSON_SCHEMA } from "../../protocol/validate"

const NonEmptyString = Schema.String.pipe(Schema.minLength(1))
const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/** A value of a `type` not in `known`: what the translation refuses by name. */
const otherType = (known: ReadonlyArray<string>) =>
  Schema.Struct({ type: Schema.String.pipe(Schema.filter((t) => !known.includes(t), { jsonSchema: { not: { enum: known } }, [EXACT_JSON_SCHEMA]: true })) })

export const InputText = Schema.Struct({ type: Schema.Literal("input_text"), text: Schema.String })
export const OutputText = Schema.Struct({
  type: Schema.Literal("output_text"),
  text: Schema.String,
  annotations: Schema.optional(Schema.Array(Schema.Unknown)),
  logprobs: Schema.optional(Schema.Array(Schema.Unknown))
})
export const RefusalContent = Schema.Struct({ type: Schema.Literal("refusal"), refusal: Schema.String })
export const InputImage = Schema.Struct({
  type: Schema.Literal("input_image"),
  image_url: Schema.optional(Schema.NullOr(Schema.String)),
  file_id: Schema.optional(Schema.NullOr(Schema.String)),
  detail: Schema.optional(Schema.Literal("auto", "low", "high", "original"))
})
export const InputFile = Schema.Struct({
  type: Schema.Literal("input_file"),
  file_data: Schema.optional(Schema.String),
  file_id: Schema.optional(Schema.NullOr(Schema.String)),
  file_url: Schema.optional(Schema.String),
  filename: Schema.optional(Schema.String)
})

export const ContentPart = Schema.Union(
  InputText,
  OutputText,
  RefusalContent,
  InputImage,
  InputFile,
  otherType(["input_text", "output_text", "refusal", "input_image", "input_file"])
)
export type ContentPart = typeof ContentPart.Type

/** EasyInputMessage, an input message, or an earlier output message sent back. */
export const MessageItem = Schema.Struct({
  type: Schema.optional(Schema.Literal("message")),
  role: Schema.Literal("user", "assistant", "system", "developer"),
  content: Schema.Union(Schema.String, Schema.Array(ContentPart)),
  id: Schema.optional(Schema.String),
  status: Schema.optional(Schema.Literal("in_progress", "completed", "incomplete")),
  phase: Schema.optional(Schema.NullOr(Schema.Literal("commentary", "final_answer")))
})
export type MessageItem = typeof MessageItem.Type

export const FunctionCallItem = Schema.Struct({
  type: Schema.Literal("function_call"),
  call_id: Schema.String,
  name: Schema.String,
  arguments: Schema.String,
  id: Schema.optional(Schema.String),
  status: Schema.optional(Schema.Literal("in_progress", "completed", "incomplete"))
})
export type FunctionCallItem = typeof FunctionCallItem.Type

export const FunctionCallOutputItem = Schema.Struct({
  type: Schema.Literal("function_call_output"),
  call_id: Schema.String,
  output: Schema.Union(Schema.String, Schema.Array(ContentPart)),
  id: Schema.optional(Schema.NullOr(Schema.String)),
  status: Schema.optional(Schema.NullOr(Schema.Literal("in_progress", "completed", "incomplete")))
})
export type FunctionCallOutputItem = typeof FunctionCallOutputItem.Type

export const InputItem = Schema.Union(
  MessageItem,
  FunctionCallItem,
  FunctionCallOutputItem,
  otherType(["message", "function_call", "function_call_output"])
)
export type InputItem = typeof InputItem.Type

export const FunctionToolParam = Schema.Struct({
  type: Schema.Literal("function"),
  name: NonEmptyString,
  description: Schema.optional(Schema.NullOr(Schema.String)),
  parameters: Schema.optional(Schema.NullOr(JsonObject)),
  strict: Schema.optional(Schema.NullOr(Schema.Boolean))
})
export type FunctionToolParam = typeof FunctionToolParam.Type

/** web_search, file_search, code_interpreter, mcp, …: OpenAI's hosted tools, kept by type to be refused by name. */
export const ToolParam = Schema.Union(FunctionToolParam, otherType(["function"]))
export type ToolParam = typeof ToolParam.Type

export const ToolChoiceParam = Schema.Union(
  Schema.Literal("none", "auto", "required"),
  Schema.Struct({ type: Schema.Literal("function"), name: Schema.String }),
  otherType(["function"])
)
export type ToolChoiceParam = typeof ToolChoiceParam.Type

export const TextFormat = Schema.Union(
  Schema.Struct({ type: Schema.Literal("text") }),
  Schema.Struct({ type: Schema.Literal("json_object") }),
  Schema.Struct({
    type: Schema.Literal("json_schema"),
    name: NonEmptyString,
    schema: JsonObject,
    // Exact, as the SDK's type is: the format is echoed on the response as it came.
    description: Schema.optionalWith(Schema.String, { exact: true }),
    strict: Schema.optionalWith(Schema.NullOr(Schema.Boolean), { exact: true })
  })
)
export type TextFormat = typeof TextFormat.Type

export const TextConfig = Schema.Struct({
  format: Schema.optional(TextFormat),
  verbosity: Schema.optional(Schema.NullOr(Schema.Literal("low", "medium", "high")))
})

export const ReasoningParam = Schema.Struct({
  effort: Schema.optional(Schema.NullOr(Schema.String)),
  summary: Schema.optional(Schema.NullOr(Schema.String)),
  generate_summary: Schema.optional(Schema.NullOr(Schema.String)),
  context: Schema.optional(Schema.NullOr(Schema.String))
})

const Nullable = <A, I>(schema: Schema.Schema<A, I>) => Schema.optional(Schema.NullOr(schema))

export const ResponsesRequest = Schema.Struct({
  model: NonEmptyString,
  input: Schema.Union(Schema.String, Schema.Array(InputItem)),
  instructions: Nullable(Schema.String),
  tools: Schema.optional(Schema.Array(ToolParam)),
  tool_choice: Schema.optional(ToolChoiceParam),
  parallel_tool_calls: Nullable(Schema.Boolean),
  text: Schema.optional(TextConfig),
  temperature: Nullable(Schema.Number.pipe(Schema.between(0, 2))),
  top_p: Nullable(Schema.Number.pipe(Schema.between(0, 1))),
  max_output_tokens: Nullable(Schema.Int.pipe(Schema.positive())),
  stream: Nullable(Schema.Boolean),
  stream_options: Nullable(Schema.Struct({ include_obfuscation: Schema.optional(Schema.Boolean) })),
  metadata: Nullable(Schema.Record({ key: Schema.String, value: Schema.String })),
  user: Schema.optional(Schema.String),
  safety_identifier: Nullable(Schema.String.pipe(Schema.maxLength(64))),
  prompt_cache_key: Nullable(Schema.String),
  store: Nullable(Schema.Boolean),
  reasoning: Nullable(ReasoningParam),
  service_tier: Nullable(Schema.Literal("auto", "default", "flex", "scale", "priority")),
  truncation: Nullable(Schema.Literal("auto", "disabled")),
  include: Nullable(Schema.Array(Schema.String)),
  // Stateful features: declared so that to-chat.ts refuses them with a reason, not as unknown.
  previous_response_id: Nullable(Schema.String),
  conversation: Nullable(Schema.Unknown),
  prompt: Nullable(Schema.Unknown),
  background: Nullable(Schema.Boolean)
})
export type ResponsesRequest = typeof ResponsesRequest.Type
