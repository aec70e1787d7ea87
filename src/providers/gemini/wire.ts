/** Gemini API (generativelanguage v1beta) wire types (https://ai.google.dev/api/generate-content). */
import { Schema } from "effect"

const Json = Schema.Record({ key: Schema.String, value: Schema.Unknown })

export const Part = Schema.Struct({
  text: Schema.optional(Schema.String),
  thought: Schema.optional(Schema.Boolean),
  inlineData: Schema.optional(Schema.Struct({ mimeType: Schema.String, data: Schema.String })),
  functionCall: Schema.optional(Schema.Struct({ name: Schema.String, args: Schema.optional(Json), id: Schema.optional(Schema.String) })),
  functionResponse: Schema.optional(Schema.Struct({ name: Schema.String, response: Json, id: Schema.optional(Schema.String) }))
})
export type Part = typeof Part.Type

export const Content = Schema.Struct({
  role: Schema.optional(Schema.Literal("user", "model")),
  parts: Schema.optionalWith(Schema.Array(Part), { default: () => [] })
})
export type Content = typeof Content.Type

export const GenerateContentRequest = Schema.Struct({
  contents: Schema.Array(Content),
  systemInstruction: Schema.optional(Schema.Struct({ parts: Schema.Array(Part) })),
  tools: Schema.optional(Schema.Array(Schema.Struct({
    functionDeclarations: Schema.Array(Schema.Struct({
      name: Schema.String,
      description: Schema.optional(Schema.String),
      parametersJsonSchema: Schema.optional(Json)
    }))
  }))),
  toolConfig: Schema.optional(Schema.Struct({
    functionCallingConfig: Schema.Struct({
      mode: Schema.Literal("AUTO", "ANY", "NONE"),
      allowedFunctionNames: Schema.optional(Schema.Array(Schema.String))
    })
  })),
  generationConfig: Schema.optional(Schema.Struct({
    temperature: Schema.optional(Schema.Number),
    topP: Schema.optional(Schema.Number),
    maxOutputTokens: Schema.optional(Schema.Number),
    stopSequences: Schema.optional(Schema.Array(Schema.String)),
    responseMimeType: Schema.optional(Schema.String),
    responseJsonSchema: Schema.optional(Json)
  }))
})
export type GenerateContentRequest = typeof GenerateContentRequest.Type

export const UsageMetadata = Schema.Struct({
  promptTokenCount: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  candidatesTokenCount: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  thoughtsTokenCount: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  cachedContentTokenCount: Schema.optionalWith(Schema.Number, { default: () => 0 })
})
export type UsageMetadata = typeof UsageMetadata.Type

export const Candidate = Schema.Struct({
  content: Schema.optional(Content),
  finishReason: Schema.optional(Schema.String),
  index: Schema.optional(Schema.Number)
})
export type Candidate = typeof Candidate.Type

export const GenerateContentResponse = Schema.Struct({
  candidates: Schema.optionalWith(Schema.Array(Candidate), { default: () => [] }),
  usageMetadata: Schema.optional(UsageMetadata),
  modelVersion: Schema.optional(Schema.String),
  responseId: Schema.optional(Schema.String),
  promptFeedback: Schema.optional(Schema.Struct({ blockReason: Schema.optional(Schema.String) }))
})
export type GenerateContentResponse = typeof GenerateContentResponse.Type

export const ErrorEnvelope = Schema.Struct({
  error: Schema.Struct({ code: Schema.optional(Schema.Number), message: Schema.String, status: Schema.optional(Schema.String) })
})
