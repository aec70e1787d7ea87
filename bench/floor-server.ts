/**
 * One variant of bench:floor's reference server (MODE), in front of the upstream at
 * UPSTREAM: each does a little more of what a gateway does with a chat completion, so that
 * the bench can say what each piece costs. Not part of Quorum; the `effect` variant uses
 * Quorum's own pieces (body reader, transport, answer schema).
 */
import { Effect, Either, Runtime } from "effect"
import { createServer, type ServerResponse } from "node:http"
import { Agent, Pool, request } from "undici"
import { readChatRequest } from "../src/http/read-json-body"
import { ChatCompletion } from "../src/protocol/chat-response"
import { checkLimits, DEFAULT_LIMITS } from "../src/protocol/limits"
import { ChatCompletionRequest } from "../src/protocol/chat-request"
import { collectBody } from "../src/http/read-body"
import { arrivedNow } from "../src/billing/ticket"
import { validator } from "../src/protocol/validate"
import { EventEmitter } from "node:events"
import { jsonHeaders, makeUpstream, postJson } from "../src/providers/http/transport"

/** An abort signal as undici also takes it, an EventEmitter (what Quorum's streams used before dispatch). */
class CallSignal extends EventEmitter {
  aborted = false
  reason: unknown = undefined
  abort(reason: unknown): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = reason
    this.emit("abort")
  }
}

const MODE = process.env.MODE ?? "pool"
const UPSTREAM = process.env.UPSTREAM ?? ""
const PATH = "/v1/chat/completions"
const HEADERS = { "content-type": "application/json" }
const timeouts = { connectMs: 5_000, idleMs: 30_000, firstTokenMs: 30_000, totalMs: 60_000, minTokensPerSecond: 20 }
const pool = new Pool(UPSTREAM, { connections: 64 })
const agent = new Agent({ connections: 64 })
const upstream = makeUpstream(timeouts, 64)
const checkAnswer = validator(ChatCompletion)
const checkRequest = validator(ChatCompletionRequest)
const fork = Runtime.runFork(Runtime.defaultRuntime)

const writeJson = (res: ServerResponse, answer: unknown) => {
  const text = JSON.stringify(answer)
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text)
}

/** The request's body as JSON, read with node's stream events. */
const readJson = (req: import("node:http").IncomingMessage, then: (body: Record<string, unknown>) => Promise<void>) => {
  const chunks: Array<Buffer> = []
  req.on("data", (c: Buffer) => chunks.push(c)).on("end", () => void then(JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>))
}

/** The call through undici's dispatch, the body gathered in a handler: no Readable, no AsyncResource, no signal. */
const dispatchText = (body: string) =>
  new Promise<{ status: number; text: string }>((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let status = 0
    pool.dispatch({ path: PATH, method: "POST", headers: HEADERS, body }, {
      onConnect: () => {},
      onHeaders: (statusCode) => {
        status = statusCode
        return true
      },
      onData: (chunk) => {
        chunks.push(chunk)
        return true
      },
      onComplete: () => resolve({ status, text: Buffer.concat(chunks).toString("utf8") }),
      onError: reject
    })
  })

const VARIANTS: Record<string, (req: import("node:http").IncomingMessage, res: ServerResponse) => void> = {
  // Parsed and re-serialized both ways, undici's Pool asked by path.
  pool: (req, res) =>
    readJson(req, async (body) => {
      const answer = await pool.request({ path: PATH, method: "POST", headers: HEADERS, body: JSON.stringify({ ...body, model: "bench0" }) })
      writeJson(res, JSON.parse(await answer.body.text()))
    }),
  // The pool's connections through undici's dispatch, the body gathered in a handler.
  "pool+dispatch": (req, res) =>
    readJson(req, async (body) => {
      const answer = await dispatchText(JSON.stringify({ ...body, model: "bench0" }))
      writeJson(res, JSON.parse(answer.text))
    }),
  // The pool, with Quorum's abort signal (an EventEmitter) and a deadline timer per call.
  "pool+signal": (req, res) =>
    readJson(req, async (body) => {
      const signal = new CallSignal()
      const timer = setTimeout(() => signal.abort(new Error("deadline")), 60_000)
      const answer = await pool.request({ path: PATH, method: "POST", headers: HEADERS, body: JSON.stringify({ ...body, model: "bench0" }), signal })
      const text = await answer.body.text()
      clearTimeout(timer)
      writeJson(res, JSON.parse(text))
    }),
  // The pool's call, as is, run by an Effect fiber (the body read by node's events first).
  "pool in a fiber": (req, res) =>
    readJson(req, (body) => {
      fork(Effect.promise(async () => {
        const answer = await pool.request({ path: PATH, method: "POST", headers: HEADERS, body: JSON.stringify({ ...body, model: "bench0" }) })
        writeJson(res, JSON.parse(await answer.body.text()))
      }))
      return Promise.resolve()
    }),
  // Quorum's transport in a fiber, the body read by node's events first.
  "transport in a fiber": (req, res) =>
    readJson(req, (body) => {
      fork(Effect.map(
        postJson({ upstream, url: `${UPSTREAM}${PATH}`, timeouts, deadline: { ms: 60_000, setting: "total_ms" }, headers: jsonHeaders({}), body: { ...body, model: "bench0" }, redact: (s) => s, errorMessage: () => undefined }),
        (answer) => writeJson(res, answer)
      ))
      return Promise.resolve()
    }),
  // The same through undici's top-level request(url) and an Agent.
  agent: (req, res) =>
    readJson(req, async (body) => {
      const answer = await request(`${UPSTREAM}${PATH}`, { method: "POST", headers: HEADERS, body: JSON.stringify({ ...body, model: "bench0" }), dispatcher: agent })
      writeJson(res, JSON.parse(await answer.body.text()))
    }),
  // And an AbortController's signal with a deadline timer per call.
  "agent+signal": (req, res) =>
    readJson(req, async (body) => {
      const controller = new AbortController()
      const timer = setTimeout(() => controller.abort(), 60_000)
      const answer = await request(`${UPSTREAM}${PATH}`, { method: "POST", headers: HEADERS, body: JSON.stringify({ ...body, model: "bench0" }), dispatcher: agent, signal: controller.signal })
      const text = await answer.body.text()
      clearTimeout(timer)
      writeJson(res, JSON.parse(text))
    }),
  // The pool variant with Quorum's checks, no Effect: the request's shape limits and schema, the answer's schema.
  "pool+checks": (req, res) =>
    readJson(req, async (body) => {
      checkLimits(body, DEFAULT_LIMITS)
      checkRequest(body)
      const answer = await pool.request({ path: PATH, method: "POST", headers: HEADERS, body: JSON.stringify({ ...body, model: "bench0" }) })
      const json: unknown = JSON.parse(await answer.body.text())
      checkAnswer(json)
      writeJson(res, json)
    }),
  // Quorum's transport on an Effect fiber, without the checks: what the fiber and the call's deadline cost.
  "effect, no checks": (req, res) => {
    collectBody(req, 1_000_000, (body) =>
      fork(Effect.flatMap(body, (text) =>
        Effect.map(
          postJson({ upstream, url: `${UPSTREAM}${PATH}`, timeouts, deadline: { ms: 60_000, setting: "total_ms" }, headers: jsonHeaders({}), body: { ...(JSON.parse(text) as object), model: "bench0" }, redact: (s) => s, errorMessage: () => undefined }),
          (answer) => writeJson(res, answer)
        )).pipe(Effect.catchAll(() => Effect.sync(() => res.writeHead(502).end())))))
  },
  // Quorum's pieces: the body read under the byte limit, then on an Effect fiber checked
  // (shape limits, schema), the call (Pool by path, the deadline), the answer validated, JSON written.
  effect: (req, res) => {
    collectBody(req, 1_000_000, (body) =>
      fork(Effect.flatMap(readChatRequest({ text: body, arrival: arrivedNow() }, { limits: DEFAULT_LIMITS }), (chat) =>
        Effect.map(
          postJson(
            { upstream, url: `${UPSTREAM}${PATH}`, timeouts, deadline: { ms: 60_000, setting: "total_ms" }, headers: jsonHeaders({}), body: { ...chat, model: "bench0" }, redact: (s) => s, errorMessage: () => undefined },
            (json) => Either.getOrElse(checkAnswer(json), () => json)
          ),
          (answer) => writeJson(res, answer)
        )).pipe(Effect.catchAll(() => Effect.sync(() => res.writeHead(502).end())))))
  }
}

const handle = VARIANTS[MODE]
if (handle === undefined) throw new Error(`MODE must be one of ${Object.keys(VARIANTS).join(", ")}`)
const server = createServer(handle)
server.keepAliveTimeout = 65_000
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  const address = server.address()
  process.stdout.write(`${typeof address === "object" && address !== null ? address.port : 0}\n`)
})
