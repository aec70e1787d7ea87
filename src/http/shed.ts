/**
 * Load shedding: past `server.max_in_flight` chat and consensus requests on this worker, a
 * new one is refused at once with a 503 in OpenAI's error shape (code `server_overloaded`,
 * `retry-after`), before its body is read or anything is allocated for it, so a flood
 * never grows the worker's memory or queues clients without bound. Admin, health and
 * documentation routes are never shed: an operator can always see what is going on.
 *
 * It sits in front of the HTTP server's own request handling (node:http's `request`
 * event), where the cost of a refusal is a counter and a few bytes.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http"

const HOT = new Set(["/v1/chat/completions", "/v1/consensus", "/consensus"])

const isHot = (request: IncomingMessage): boolean => {
  if (request.method !== "POST") return false
  const url = request.url ?? ""
  const query = url.indexOf("?")
  return HOT.has(query === -1 ? url : url.slice(0, query))
}

export interface Shedding {
  /** Hot-route requests being served now. */
  readonly inFlight: () => number
  /** Requests refused since start. */
  readonly shed: () => number
}

const refusal = (max: number) =>
  JSON.stringify({
    error: {
      message: `This gateway worker is serving its limit of ${max} requests (server.max_in_flight); retry shortly.`,
      type: "server_error",
      param: null,
      code: "server_overloaded"
    }
  })

/** Wraps the server's request event with the bound; returns its counters. */
export const shedLoad = (server: Server, maxInFlight: number): Shedding => {
  let inFlight = 0
  let shed = 0
  const body = refusal(maxInFlight)
  const emit = server.emit.bind(server) as (event: string, ...args: Array<unknown>) => boolean
  server.emit = ((event: string, ...args: Array<unknown>): boolean => {
    if (event !== "request") return emit(event, ...args)
    const request = args[0] as IncomingMessage
    const response = args[1] as ServerResponse
    if (!isHot(request)) return emit(event, ...args)
    if (inFlight >= maxInFlight) {
      shed++
      // The body is not read: closing the connection after the answer discards it.
      response.writeHead(503, { "content-type": "application/json", "retry-after": "1", connection: "close" }).end(body)
      return true
    }
    inFlight++
    response.once("close", () => inFlight--)
    return emit(event, ...args)
  }) as typeof server.emit
  return { inFlight: () => inFlight, shed: () => shed }
}
