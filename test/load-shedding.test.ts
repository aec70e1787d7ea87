/**
 * Load shedding and the bound on upstream connections, over HTTP against a real gateway:
 * past server.max_in_flight a chat request gets a fast 503 server_overloaded with
 * retry-after while /health keeps answering; a deployment's calls past
 * server.max_upstream_connections wait for a connection instead of opening another.
 * Upstream replies are held until the test releases them: events, not time.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { connect, type Socket } from "node:net"
import { type RunningGateway, startGateway } from "./support/gateway"
import { validateError } from "./support/openai-schemas"
import { type ScriptedOpenAI, startScriptedOpenAI } from "./support/scripted-openai"

let up: ScriptedOpenAI
let shedding: RunningGateway
let queueing: RunningGateway

const config = (server: string) => `
server: ${server}
models:
${["a", "b", "c", "d"].map((m) => `  - { id: ${m}, provider: openai, base_url: "${up.url}/v1" }`).join("\n")}
`

beforeAll(async () => {
  up = await startScriptedOpenAI()
  for (const m of ["a", "b", "c", "d"]) up.script(m, `answer of ${m}`)
  shedding = await startGateway(config("{ max_in_flight: 2 }"), { OPENAI_API_KEY: "sk-test" })
  queueing = await startGateway(config("{ max_upstream_connections: 1 }"), { OPENAI_API_KEY: "sk-test" })
})
afterAll(async () => {
  for (const m of ["a", "b", "c"]) up?.release(m)
  await shedding?.close()
  await queueing?.close()
  await up?.close()
})

const chat = (model: string, gateway = shedding) =>
  fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] })
  })

/** A chat request whose headers and first bytes are sent, and never the rest of its body. */
const halfSent = (gateway: RunningGateway) =>
  new Promise<Socket>((resolve, reject) => {
    const { hostname, port } = new URL(gateway.url)
    const body = JSON.stringify({ model: "c", messages: [{ role: "user", content: "hi" }] })
    const socket = connect(Number(port), hostname, () => {
      socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 10)}`)
      resolve(socket)
    })
    socket.on("error", reject)
  })

/** Reads the worker's in-flight gauge until it shows `n`: each read waits for the gateway's answer. */
const inFlightReaches = async (gateway: RunningGateway, n: number) => {
  for (;;) {
    const text = await (await fetch(`${gateway.url}/metrics`)).text()
    if (new RegExp(`^quorum_in_flight_requests ${n}$`, "m").test(text)) return
  }
}

/** Chat requests answered 499 (the client left), from the gateway's request counter. */
const cancelled = async (gateway: RunningGateway) => {
  const text = await (await fetch(`${gateway.url}/metrics`)).text()
  return [...text.matchAll(/^quorum_requests_total\{([^}]*)\} (\d+)$/gm)]
    .filter(([, labels]) => labels?.includes('status="499"') === true && labels.includes('endpoint="/v1/chat/completions"'))
    .reduce((sum, [, , n]) => sum + Number(n), 0)
}

describe("load shedding", () => {
  it("refuses requests past max_in_flight at once, in OpenAI's shape, while health answers", async () => {
    up.hold("a")
    up.hold("b")
    const first = chat("a")
    const second = chat("b")
    await Promise.all([up.called("a"), up.called("b")])

    const refused = await chat("d")
    expect(refused.status).toBe(503)
    expect(refused.headers.get("retry-after")).toBe("1")
    const body = (await refused.json()) as { error: { code: string; message: string } }
    expect(validateError(body)).toEqual([])
    expect(body.error.code).toBe("server_overloaded")
    expect(body.error.message).toContain("server.max_in_flight")
    expect(up.calls.get("d")).toBeUndefined()
    expect((await fetch(`${shedding.url}/health`)).status).toBe(200)

    up.release("a")
    up.release("b")
    expect((await first).status).toBe(200)
    expect((await second).status).toBe(200)
    // Room again: served.
    expect((await chat("d")).status).toBe(200)
  })

  it("frees the place of a client that leaves while still sending its body, records it as cancelled, and asks no upstream for it", async () => {
    const callsBefore = up.calls.get("c") ?? 0
    const cancelledBefore = await cancelled(shedding)
    // Two requests whose bodies never finish hold both places.
    const sockets = await Promise.all([0, 1].map(() => halfSent(shedding)))
    await inFlightReaches(shedding, 2)
    expect((await chat("d")).status).toBe(503)
    for (const socket of sockets) socket.destroy()
    await inFlightReaches(shedding, 0)
    expect(await cancelled(shedding)).toBe(cancelledBefore + 2)
    expect((await chat("d")).status).toBe(200)
    expect(up.calls.get("c") ?? 0).toBe(callsBefore)
  })

  it("queues a deployment's calls past max_upstream_connections instead of opening more", async () => {
    up.hold("c")
    const first = chat("c", queueing)
    await up.called("c")
    const second = chat("c", queueing)
    // Another deployment's call goes through meanwhile; c's second call is still waiting for c's one connection.
    expect((await chat("d", queueing)).status).toBe(200)
    expect(up.calls.get("c")).toBe(1)
    up.release("c")
    expect((await first).status).toBe(200)
    expect((await second).status).toBe(200)
    expect(up.calls.get("c")).toBe(2)
  })
})
