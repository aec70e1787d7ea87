/**
 * An OpenAI-compatible upstream with a fixed latency, for the overhead benchmark: a
 * non-stream answer after LATENCY_MS, or a stream whose first chunk comes after
 * LATENCY_MS and the rest 1 ms apart, with its usage when asked for, as OpenAI sends it.
 * Run as its own process.
 */
import { createServer } from "node:http"

const latency = Number(process.env.LATENCY_MS ?? 20)
const port = Number(process.env.PORT ?? 0)

const completion = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created: 1_700_000_000,
  model: "bench",
  choices: [{ index: 0, message: { role: "assistant", content: "The capital of France is Paris.", refusal: null }, logprobs: null, finish_reason: "stop" }],
  usage: { prompt_tokens: 12, completion_tokens: 8, total_tokens: 20 }
})

const chunk = (delta: object, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: "chatcmpl-bench", object: "chat.completion.chunk", created: 1_700_000_000, model: "bench", choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`

/** As OpenAI answers `stream_options.include_usage`: one more chunk, with no choices, before [DONE]. */
const usageChunk = `data: ${JSON.stringify({ id: "chatcmpl-bench", object: "chat.completion.chunk", created: 1_700_000_000, model: "bench", choices: [], usage: { prompt_tokens: 12, completion_tokens: 8, total_tokens: 20 } })}\n\n`

const server = createServer((req, res) => {
  const chunks: Array<Buffer> = []
  req.on("data", (c: Buffer) => chunks.push(c))
  req.on("end", () => {
    const body = Buffer.concat(chunks)
    const stream = body.includes("\"stream\":true")
    const usage = body.includes("\"include_usage\":true")
    setTimeout(() => {
      if (!stream) {
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(completion) })
        res.end(completion)
        return
      }
      res.writeHead(200, { "content-type": "text/event-stream" })
      res.write(chunk({ role: "assistant", content: "" }))
      const words = ["The ", "capital ", "of ", "France ", "is ", "Paris."]
      let i = 0
      const timer = setInterval(() => {
        if (i < words.length) res.write(chunk({ content: words[i++] }))
        else {
          clearInterval(timer)
          res.write(chunk({}, "stop"))
          if (usage) res.write(usageChunk)
          res.end("data: [DONE]\n\n")
        }
      }, 1)
    }, latency)
  })
})
server.keepAliveTimeout = 65_000
server.listen(port, "127.0.0.1", () => {
  const address = server.address()
  process.stdout.write(`${typeof address === "object" && address !== null ? address.port : port}\n`)
})
