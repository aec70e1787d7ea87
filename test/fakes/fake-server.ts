/**
 * The part every fake upstream shares: a real HTTP server on loopback that records what
 * it was sent, counts requests the client aborted, and plays scripted faults (a status
 * with headers, a hang, malformed JSON) before the provider-specific behaviour.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

export type Fault =
  | { readonly kind: "status"; readonly status: number; readonly body: unknown; readonly headers?: Record<string, string> }
  | { readonly kind: "hang" }
  | { readonly kind: "malformed" }
  /** Stream only: send this many events, then drop the connection. */
  | { readonly kind: "cut"; readonly afterEvents: number }
  /** Stream only: send this many events, then go silent with the connection open. */
  | { readonly kind: "stall"; readonly afterEvents: number }
  /** Stream only: this long between events (chunks keep coming, slowly). */
  | { readonly kind: "dribble"; readonly gapMs: number }
  /** Stream only: wait this long before the first event. */
  | { readonly kind: "slow-start"; readonly ms: number }

export interface Received {
  readonly method: string
  readonly url: string
  readonly headers: IncomingMessage["headers"]
  readonly body: any
}

export interface Exchange {
  readonly received: Received
  readonly res: ServerResponse
  /** The fault scripted for this request, if any (already played unless it is stream-only). */
  readonly fault: Fault | undefined
}

export interface FakeServer {
  readonly url: string
  readonly received: Array<Received>
  /** Requests whose client went away before the response was complete. */
  aborted(): number
  /** Faults played in order, one per request. */
  script(...faults: Array<Fault>): void
  /** Forgets what was received and scripted. */
  reset(): void
  close(): Promise<void>
}

export const startFake = async (handle: (exchange: Exchange) => void | Promise<void>): Promise<FakeServer> => {
  const received: Array<Received> = []
  const faults: Array<Fault> = []
  let aborted = 0
  const server = createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8")
      let body: unknown = text
      try {
        body = text === "" ? undefined : JSON.parse(text)
      } catch {
        // kept as text
      }
      const entry = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body }
      received.push(entry)
      res.on("close", () => {
        if (!res.writableFinished) aborted++
      })
      const fault = faults.shift()
      if (fault?.kind === "status") {
        res.writeHead(fault.status, { "content-type": "application/json", ...fault.headers })
        res.end(typeof fault.body === "string" ? fault.body : JSON.stringify(fault.body))
        return
      }
      if (fault?.kind === "hang") return
      if (fault?.kind === "malformed") {
        res.writeHead(200, { "content-type": "application/json" })
        res.end("{\"id\": \"broken\", \"choices\": [")
        return
      }
      void handle({ received: entry, res, fault })
    })
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    aborted: () => aborted,
    script: (...more) => void faults.push(...more),
    reset: () => {
      received.length = 0
      faults.length = 0
      aborted = 0
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

export const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { "content-type": "application/json" })
  res.end(JSON.stringify(body))
}

/**
 * Writes SSE events with real gaps between them (so chunks are separate TCP writes),
 * honouring a scripted cut or slow start.
 */
export const writeSse = async (
  res: ServerResponse,
  events: ReadonlyArray<{ readonly event?: string; readonly data: string }>,
  fault: Fault | undefined
): Promise<void> => {
  if (fault?.kind === "slow-start") await sleep(fault.ms)
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
  for (const [i, e] of events.entries()) {
    if (fault?.kind === "cut" && i === fault.afterEvents) {
      res.socket?.destroy()
      return
    }
    if (fault?.kind === "stall" && i === fault.afterEvents) return
    if (res.destroyed) return
    res.write(`${e.event === undefined ? "" : `event: ${e.event}\n`}data: ${e.data}\n\n`)
    await sleep(fault?.kind === "dribble" ? fault.gapMs : 2)
  }
  res.end()
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The text of the last user message: fakes answer according to it. */
export const lastUserText = (messages: ReadonlyArray<any>): string => {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]
    if (m.role !== "user") continue
    if (typeof m.content === "string") return m.content
    if (Array.isArray(m.content)) {
      return m.content.map((p: any) => (typeof p === "string" ? p : p.text ?? "")).join("")
    }
    if (Array.isArray(m.parts)) return m.parts.map((p: any) => p.text ?? "").join("")
  }
  return ""
}
