/**
 * OpenAI's embeddings wire format (CreateEmbeddingRequest / CreateEmbeddingResponse), as
 * Schemas: what POST /v1/embeddings reads, and what every provider adapter answers.
 */
import { Schema } from "effect"

const TokenIds = Schema.Array(Schema.Int.pipe(Schema.nonNegative()))

export const EmbeddingInput = Schema.Union(
  Schema.String,
  Schema.Array(Schema.String).pipe(Schema.minItems(1), Schema.maxItems(2048)),
  TokenIds.pipe(Schema.minItems(1)),
  Schema.Array(TokenIds.pipe(Schema.minItems(1))).pipe(Schema.minItems(1), Schema.maxItems(2048))
)
export type EmbeddingInput = typeof EmbeddingInput.Type

export const EmbeddingRequest = Schema.Struct({
  model: Schema.String,
  input: EmbeddingInput,
  encoding_format: Schema.optional(Schema.Literal("float", "base64")),
  dimensions: Schema.optional(Schema.Int.pipe(Schema.positive())),
  user: Schema.optional(Schema.String)
})
export type EmbeddingRequest = typeof EmbeddingRequest.Type

export const Embedding = Schema.Struct({
  object: Schema.Literal("embedding"),
  index: Schema.Int,
  /** Floats, or with encoding_format "base64" the little-endian float32 bytes in base64. */
  embedding: Schema.Union(Schema.Array(Schema.Number), Schema.String)
})

export const EmbeddingResponse = Schema.Struct({
  object: Schema.Literal("list"),
  data: Schema.Array(Embedding),
  model: Schema.String,
  usage: Schema.Struct({ prompt_tokens: Schema.Int, total_tokens: Schema.Int })
})
export type EmbeddingResponse = typeof EmbeddingResponse.Type

/** The inputs as texts, where they are texts (token ids are not). */
export const inputTexts = (input: EmbeddingInput): ReadonlyArray<string> | undefined => {
  if (typeof input === "string") return [input]
  if (input.every((item): item is string => typeof item === "string")) return input
  return undefined
}

/** Floats as OpenAI's base64 encoding: little-endian float32. */
export const base64Floats = (values: ReadonlyArray<number>): string => Buffer.from(new Float32Array(values).buffer).toString("base64")
