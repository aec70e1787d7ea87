/**
 * A Gemini API server, per Google's generateContent reference: `x-goog-api-key`,
 * `models/{model}:generateContent` and `:streamGenerateContent?alt=sse`, camelCase
 * fields, function calls without ids, and no terminal event (the chunk holding
 * finishReason is the last).
 */
import { type FakeServer, json, lastUserText, startFake, writeSse } from "./fake-server"
import { fakeVector } from "./openai-fake"
import { pieces, sampleFor } from "./sample-json"

export const GEMINI_KEY = "AIzaFakeGeminiKey0123456789abcdef"

const KNOWN = new Set(["contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings", "cachedContent"])

const error = (code: number, status: string, message: string) => ({ error: { code, message, status } })

export const startGeminiFake = (): Promise<FakeServer> =>
  startFake(async ({ received, res, fault }) => {
    const match = /^\/v1beta\/models\/([^:/]+):(generateContent|streamGenerateContent|batchEmbedContents)(\?alt=sse)?$/.exec(received.url)
    if (match === null) return json(res, 404, error(404, "NOT_FOUND", "Not found"))
    if (received.headers["x-goog-api-key"] !== GEMINI_KEY) {
      return json(res, 400, error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."))
    }
    if (match[2] === "batchEmbedContents") {
      // Per Google's reference: one request per text, each naming its model; no token counts in the answer.
      const requests: Array<any> = received.body.requests
      if (requests.some((r) => r.model !== `models/${decodeURIComponent(match[1]!)}`)) {
        return json(res, 400, error(400, "INVALID_ARGUMENT", "Each request's model must be the model of the URL."))
      }
      return json(res, 200, { embeddings: requests.map((r) => ({ values: fakeVector(r.content.parts.map((p: any) => p.text).join(""), r.outputDimensionality) })) })
    }
    const body = received.body
    const extra = Object.keys(body).find((k) => !KNOWN.has(k))
    if (extra !== undefined) return json(res, 400, error(400, "INVALID_ARGUMENT", `Invalid JSON payload received. Unknown name "${extra}": Cannot find field.`))
    if (body.contents.some((c: any) => c.role !== "user" && c.role !== "model")) {
      return json(res, 400, error(400, "INVALID_ARGUMENT", "Please use a valid role: user, model."))
    }
    const model = decodeURIComponent(match[1]!)
    const text = lastUserText(body.contents)
    const declarations = body.tools?.[0]?.functionDeclarations ?? []
    const config = body.toolConfig?.functionCallingConfig
    const forcedName = config?.mode === "ANY" ? config.allowedFunctionNames?.[0] ?? declarations[0]?.name : undefined
    const tool = forcedName ?? (declarations.length > 0 && /weather/i.test(text) ? declarations[0].name : undefined)
    const gen = body.generationConfig ?? {}
    const answer = gen.responseMimeType === "application/json"
      ? JSON.stringify(gen.responseJsonSchema !== undefined ? sampleFor(gen.responseJsonSchema) : { answer: "Paris" })
      : `Echo: ${text}`
    const usageMetadata = { promptTokenCount: 9, candidatesTokenCount: 5, thoughtsTokenCount: 2, totalTokenCount: 16 }
    const response = (parts: Array<unknown>, finishReason?: string, withUsage = false) => ({
      candidates: [{ content: { role: "model", parts }, ...(finishReason ? { finishReason } : {}), index: 0 }],
      ...(withUsage ? { usageMetadata } : {}),
      modelVersion: model,
      responseId: "resp-fake01"
    })

    if (match[2] === "generateContent") {
      const parts = tool !== undefined ? [{ functionCall: { name: tool, args: { city: "Paris" } } }] : [{ text: answer }]
      return json(res, 200, response(parts, "STOP", true))
    }
    const events = tool !== undefined
      ? [{ data: JSON.stringify(response([{ functionCall: { name: tool, args: { city: "Paris" } } }], "STOP", true)) }]
      : pieces(answer).map((piece, i, all) => ({
        data: JSON.stringify(response([{ text: piece }], i === all.length - 1 ? "STOP" : undefined, i === all.length - 1))
      }))
    await writeSse(res, events, fault)
  })
