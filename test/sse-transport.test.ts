/**
 * The event-stream transport (providers/http/sse.ts) against a real HTTP server on
 * loopback: a consumer that stops pulling holds the upstream back (the socket is paused,
 * so the upstream's writes block rather than Quorum buffering the answer), and every
 * event still arrives, in order, once it pulls again; a stream that ends without its
 * terminal event is cut; closing the scope aborts the call.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Deferred, Effect, Exit, Option, Scope } from "effect"
import { readFileSync } from "node:fs"
import { createServer, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import type { Timeouts } from "../src/config/gateway-config"
import { postSse, type StreamEnd } from "../src/providers/http/sse"
import { jsonHeaders, makeUpstream, postJson, type PostOptions } from "../src/providers/http/transport"
import { UpstreamError } from "../src/providers/upstream-error"

/** The most a TCP socket buffer may grow to here (the third figure of /proc/sys/net/ipv4/tcp_rmem or tcp_wmem), 32 MB if unknown. */
const largestBuffer = (name: string): number => {
  try {
    return Number(readFileSync(`/proc/sys/net/ipv4/${name}`, "utf8").trim().split(/\s+/)[2]) || 32 << 20
  } catch {
    return 32 << 20
  }
}

const TIMEOUTS: Timeouts = { connectMs: 5_000, firstTokenMs: 30_000, idleMs: 30_000, totalMs: 60_000, minTokensPerSecond: 1 }
const END: StreamEnd<string> = { isTerminal: (data) => data === "last", expected: "the last event" }
const decoder = () => (event: { readonly data: string }, out: Array<string>) => {
  out.push(event.data)
  return undefined
}

/** A server whose one route is `write(res)`; resolves with its URL. */
const serve = (write: (res: ServerResponse) => void) =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: Server; readonly url: string }>((resume) => {
      const server = createServer((req, res) => {
        req.resume()
        req.on("end", () => {
          res.writeHead(200, { "content-type": "text/event-stream" })
          write(res)
        })
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/stream` })))
    }),
    ({ server }) => Effect.sync(() => server.closeAllConnections()).pipe(Effect.zipRight(Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))))
  )

/** An upstream that writes `text` and holds the stream open; `gone` completes when the gateway closes the connection. */
const servesThenWatches = (text: string) =>
  Effect.gen(function*() {
    const gone = yield* Deferred.make<void>()
    const { url } = yield* serve((res) => {
      res.write(text)
      res.on("close", () => Deferred.unsafeDone(gone, Exit.void))
    })
    return { url, gone }
  })

const optionsFor = (url: string): PostOptions => ({
  upstream: makeUpstream(TIMEOUTS, 2),
  url,
  timeouts: TIMEOUTS,
  deadline: { ms: 60_000, setting: "total_ms" },
  headers: jsonHeaders({}),
  body: { stream: true },
  redact: (text) => text,
  errorMessage: () => undefined
})

const readAll = (pull: Effect.Effect<Chunk.Chunk<string>, Option.Option<unknown>>) =>
  Effect.gen(function*() {
    const seen: Array<string> = []
    for (;;) {
      const read = yield* Effect.exit(pull)
      if (Exit.isSuccess(read)) {
        seen.push(...read.value)
        continue
      }
      return { seen, end: read }
    }
  })

describe("the event-stream transport", () => {
  it.scopedLive("pauses the upstream while nobody pulls, and delivers every event in order once pulled", () =>
    Effect.gen(function*() {
      // Written as fast as the socket takes them: twice what the kernel's socket buffers may grow to, and more.
      const payload = "x".repeat(256 * 1024)
      const EVENTS = Math.ceil((2 * (largestBuffer("tcp_rmem") + largestBuffer("tcp_wmem")) + (16 << 20)) / payload.length)
      const finished = yield* Deferred.make<void>()
      const { url } = yield* serve((res) => {
        let i = 0
        const more = () => {
          while (i < EVENTS) {
            const data = i === EVENTS - 1 ? "last" : `${i}:${payload}`
            i++
            if (!res.write(`data: ${data}\n\n`)) return void res.once("drain", more)
          }
          res.end(() => Deferred.unsafeDone(finished, Exit.void))
        }
        more()
      })
      const pull = yield* postSse(optionsFor(url), decoder, END)
      const first = yield* pull
      expect(Chunk.toReadonlyArray(first)[0]).toMatch(/^0:/)
      // Nothing pulls for a second. Paused, the upstream cannot finish however long this
      // waits (the window cannot fail a correct transport); one that buffered the answer in
      // memory instead would let it write everything.
      const outcome = yield* Effect.race(Deferred.await(finished).pipe(Effect.as("finished")), Effect.sleep("1 second").pipe(Effect.as("held")))
      expect(outcome).toBe("held")
      const { seen, end } = yield* readAll(pull)
      const all = [...Chunk.toReadonlyArray(first), ...seen]
      expect(all).toHaveLength(EVENTS)
      expect(all.slice(0, -1).every((data, i) => data.startsWith(`${i}:`))).toBe(true)
      expect(all.at(-1)).toBe("last")
      // The end, not a failure: the terminal event went by.
      const failure = Exit.isFailure(end) ? Cause.failureOption(end.cause) : Option.none()
      expect(Option.isSome(failure) && Option.isNone(failure.value)).toBe(true)
      yield* Deferred.await(finished)
    }))

  it.scopedLive("fails a stream that ends before its terminal event as cut", () =>
    Effect.gen(function*() {
      const { url } = yield* serve((res) => res.end("data: one\n\ndata: two\n\n"))
      const pull = yield* postSse(optionsFor(url), decoder, END)
      const { seen, end } = yield* readAll(pull)
      expect(seen).toEqual(["one", "two"])
      const failure = Exit.isFailure(end) ? end.cause : undefined
      expect(String(failure)).toContain("the upstream closed the stream before the last event")
    }))

  it.scopedLive("keeps its deadlines while it waits for a connection: a call queued behind a busy one fails in time", () =>
    Effect.gen(function*() {
      const { url } = yield* serve((res) => res.write("data: hello\n\n"))
      // One connection, held by a stream that never ends.
      const upstream = makeUpstream(TIMEOUTS, 1)
      const busy = yield* postSse({ ...optionsFor(url), upstream }, decoder, END)
      expect(Chunk.toReadonlyArray(yield* busy)).toEqual(["hello"])
      const queued = yield* Effect.exit(Effect.scoped(postSse({
        ...optionsFor(url),
        upstream,
        deadline: { ms: 60_000, setting: "total_ms", firstToken: { ms: 200, setting: "first_token_ms" } }
      }, decoder, END)))
      expect(String(Exit.isFailure(queued) ? queued.cause : "")).toContain("no first token within 200 ms (first_token_ms)")
      const json = yield* Effect.exit(postJson({ ...optionsFor(url), upstream, deadline: { ms: 200, setting: "total_ms" } }))
      expect(String(Exit.isFailure(json) ? json.cause : "")).toContain("no response within 200 ms (total_ms)")
    }))

  it.scopedLive("aborts an upstream that goes on after an event it could not decode", () =>
    Effect.gen(function*() {
      const { url, gone } = yield* servesThenWatches("data: one\n\ndata: bad\n\n")
      const strict = () => (event: { readonly data: string }, out: Array<string>) => {
        if (event.data === "bad") return new UpstreamError({ kind: "malformed", message: "not an event of this stream" })
        out.push(event.data)
        return undefined
      }
      const scope = yield* Scope.make()
      const pull = yield* Scope.extend(postSse(optionsFor(url), strict, END), scope)
      const { seen, end } = yield* readAll(pull)
      expect(seen).toEqual(["one"])
      expect(String(Exit.isFailure(end) ? end.cause : "")).toContain("not an event of this stream")
      yield* Scope.close(scope, Exit.void)
      yield* Deferred.await(gone)
    }))

  it.scopedLive("aborts the call when its scope closes, and the upstream sees the connection go", () =>
    Effect.gen(function*() {
      const { url, gone } = yield* servesThenWatches("data: hello\n\n")
      const scope = yield* Scope.make()
      const pull = yield* Scope.extend(postSse(optionsFor(url), decoder, END), scope)
      expect(Chunk.toReadonlyArray(yield* pull)).toEqual(["hello"])
      yield* Scope.close(scope, Exit.void)
      yield* Deferred.await(gone)
    }))
})
