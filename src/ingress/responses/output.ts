/**
 * The Responses API's answer as Quorum writes it: the `response` object and its output
 * items (a message with output_text / refusal parts, function calls), and the streaming
 * events. Shapes follow the `openai` SDK's Response, ResponseOutputItem and
 * ResponseStreamEvent (test/ingress-responses.test.ts holds them to those types).
 */
import { Schema } from "effect"
import { TextFormat } from "./wire"

/** Annotations and logprobs: Quorum has none to give, and the SDK's types want the lists present. */
const Empty = Schema.mutable(Schema.Tuple())

/** The SDK's types are mutable arrays, which a readonly one is not assignable to. */
const List = <A, I>(item: Schema.Schema<A, I>) => Schema.mutable(Schema.Array(item))

export const OutputTextPart = Schema.Struct({
  type: Schema.Literal("output_text"),
  text: Schema.String,
  annotations: Empty,
  logprobs: Empty
})
export type OutputTextPart = typeof OutputTextPart.Type

export const RefusalPart = Schema.Struct({ type: Schema.Literal("refusal"), refusal: Schema.String })
export type RefusalPart = typeof RefusalPart.Type

export const ItemStatus = Schema.Literal("in_progress", "completed", "incomplete")

export const OutputMessage = Schema.Struct({
  type: Schema.Literal("message"),
  id: Schema.String,
  role: Schema.Literal("assistant"),
  status: ItemStatus,
  content: List(Schema.Union(OutputTextPart, RefusalPart))
})
export type OutputMessage = typeof OutputMessage.Type

export const FunctionCall = Schema.Struct({
  type: Schema.Literal("function_call"),
  id: Schema.String,
  call_id: Schema.String,
  name: Schema.String,
  arguments: Schema.String,
  status: ItemStatus
})
export type FunctionCall = typeof FunctionCall.Type

export const OutputItem = Schema.Union(OutputMessage, FunctionCall)
export type OutputItem = typeof OutputItem.Type

export const ResponseUsage = Schema.Struct({
  input_tokens: Schema.Number,
  input_tokens_details: Schema.Struct({ cached_tokens: Schema.Number, cache_write_tokens: Schema.Number }),
  output_tokens: Schema.Number,
  output_tokens_details: Schema.Struct({ reasoning_tokens: Schema.Number }),
  total_tokens: Schema.Number
})
export type ResponseUsage = typeof ResponseUsage.Type

export const EchoedTool = Schema.Struct({
  type: Schema.Literal("function"),
  name: Schema.String,
  description: Schema.NullOr(Schema.String),
  parameters: Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  strict: Schema.NullOr(Schema.Boolean)
})

export const EchoedToolChoice = Schema.Union(
  Schema.Literal("none", "auto", "required"),
  Schema.Struct({ type: Schema.Literal("function"), name: Schema.String })
)

export const ResponseErrorCode = Schema.Literal("server_error", "rate_limit_exceeded")

export const ResponseObject = Schema.Struct({
  id: Schema.String,
  object: Schema.Literal("response"),
  created_at: Schema.Number,
  completed_at: Schema.NullOr(Schema.Number),
  status: Schema.Literal("completed", "failed", "in_progress", "incomplete"),
  error: Schema.NullOr(Schema.Struct({ code: ResponseErrorCode, message: Schema.String })),
  incomplete_details: Schema.NullOr(Schema.Struct({ reason: Schema.Literal("max_output_tokens", "content_filter") })),
  instructions: Schema.NullOr(Schema.String),
  max_output_tokens: Schema.NullOr(Schema.Number),
  model: Schema.String,
  output: List(OutputItem),
  /** The SDK's convenience field (it recomputes it too): the output's text parts joined. */
  output_text: Schema.String,
  parallel_tool_calls: Schema.Boolean,
  previous_response_id: Schema.Null,
  temperature: Schema.NullOr(Schema.Number),
  top_p: Schema.NullOr(Schema.Number),
  tool_choice: EchoedToolChoice,
  tools: List(EchoedTool),
  text: Schema.Struct({ format: TextFormat }),
  metadata: Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.String })),
  // Exact: the SDK's optional fields do not take an explicit undefined.
  usage: Schema.optionalWith(ResponseUsage, { exact: true }),
  user: Schema.optionalWith(Schema.String, { exact: true }),
  safety_identifier: Schema.optionalWith(Schema.String, { exact: true }),
  /** Nothing is stored: Quorum is stateless, whatever the request said. */
  store: Schema.Literal(false)
})
export type ResponseObject = typeof ResponseObject.Type

const seq = { sequence_number: Schema.Number }
const at = { item_id: Schema.String, output_index: Schema.Number }
const partAt = { ...at, content_index: Schema.Number }

const lifecycle = <T extends string>(type: T) => Schema.Struct({ type: Schema.Literal(type), response: ResponseObject, ...seq })

export const StreamEvent = Schema.Union(
  lifecycle("response.created"),
  lifecycle("response.in_progress"),
  lifecycle("response.completed"),
  lifecycle("response.incomplete"),
  lifecycle("response.failed"),
  Schema.Struct({ type: Schema.Literal("response.output_item.added"), output_index: Schema.Number, item: OutputItem, ...seq }),
  Schema.Struct({ type: Schema.Literal("response.output_item.done"), output_index: Schema.Number, item: OutputItem, ...seq }),
  Schema.Struct({ type: Schema.Literal("response.content_part.added"), ...partAt, part: Schema.Union(OutputTextPart, RefusalPart), ...seq }),
  Schema.Struct({ type: Schema.Literal("response.content_part.done"), ...partAt, part: Schema.Union(OutputTextPart, RefusalPart), ...seq }),
  Schema.Struct({ type: Schema.Literal("response.output_text.delta"), ...partAt, delta: Schema.String, logprobs: Empty, ...seq }),
  Schema.Struct({ type: Schema.Literal("response.output_text.done"), ...partAt, text: Schema.String, logprobs: Empty, ...seq }),
  Schema.Struct({ type: Schema.Literal("response.refusal.delta"), ...partAt, delta: Schema.String, ...seq }),
  Schema.Struct({ type: Schema.Literal("response.refusal.done"), ...partAt, refusal: Schema.String, ...seq }),
  Schema.Struct({ type: Schema.Literal("response.function_call_arguments.delta"), ...at, delta: Schema.String, ...seq }),
  Schema.Struct({ type: Schema.Literal("response.function_call_arguments.done"), ...at, name: Schema.String, arguments: Schema.String, ...seq })
)
export type StreamEvent = typeof StreamEvent.Type
