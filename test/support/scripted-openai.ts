/**
 * An OpenAI-compatible upstream whose every model has a scripted reply, counting the
 * calls each model received (what a consensus wave made) and those the client aborted.
 * A model may be held: its reply waits until the test releases it (an event, not a time).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

export interface Reply {
  readonly content: string | null
  readonly finish_reason?: "stop" | "length"
  readonly refusal?: string
}

export interface ScriptedOpenAI {
  readonly url: string
  /** Calls received per model (the upstream model name). */
  readonly calls: Map<string, number>
  readonly aborted: Map<string, number>
  /** The last request body each model received. */
  readonly bodies: Map<string, Record<string, unknown>>
  script(model: string, reply: Reply | string): void
  /** Holds `model`'s replies until `release(model)`. */
  hold(model: string): void
  release(model: string): void
  /** Resolves once `model` has received a call. */
  called(model: string): Promise<void>
  reset(): void
  close(): Promise<void>
}

export const startScriptedOpenAI = async (): Promise<ScriptedOpenAI> => {
  const replies = new Map<string, Reply>()
  const calls = new Map<string, number>()
  const aborted = new Map<string, number>()
  const bodies = new Map<string, Record<string, unknown>>()
  const held = new Map<string, { promise: Promise<void>; release: () => void }>()
  const waiters = new Map<string, Array<() => void>>()
  const readBody = (req: IncomingMessage) =>
    new Promise<string>((resolve) => {
      let text = ""
      req.on("data", (c: Buffer) => (text += c.toString()))
      req.on("end", () => resolve(text))
    })
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const body = JSON.parse(await readBody(req)) as { model: string }
    const model = body.model
    bodies.set(model, body)
    calls.set(model, (calls.get(model) ?? 0) + 1)
    for (const wake of waiters.get(model) ?? []) wake()
    waiters.delete(model)
    res.on("close", () => {
      if (!res.writableFinished) aborted.set(model, (aborted.get(model) ?? 0) + 1)
    })
    const hold = held.get(model)
    if (hold !== undefined) await hold.promise
    if (res.destroyed) return
    const reply = replies.get(model) ?? { content: "no script" }
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify({
      id: `chatcmpl-${model}`,
      object: "chat.completion",
      created: 1_700_000_000,
      model,
      choices: [{ index: 0, message: { role: "assistant", content: reply.content, refusal: reply.refusal ?? null }, logprobs: null, finish_reason: reply.finish_reason ?? "stop" }],
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 }
    }))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/v1`,
    calls,
    aborted,
    bodies,
    script: (model, reply) => replies.set(model, typeof reply === "string" ? { content: reply } : reply),
    hold: (model) => {
      let release = () => {}
      const promise = new Promise<void>((r) => (release = r))
      held.set(model, { promise, release })
    },
    release: (model) => {
      held.get(model)?.release()
      held.delete(model)
    },
    called: (model) =>
      (calls.get(model) ?? 0) > 0 ? Promise.resolve() : new Promise<void>((r) => waiters.set(model, [...(waiters.get(model) ?? []), r])),
    reset: () => {
      calls.clear()
      aborted.clear()
    },
    close: () => {
      for (const h of held.values()) h.release()
      server.closeAllConnections()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
