/**
 * A reference point for bench:overhead, not part of Quorum: the least a Node proxy can
 * do (node:http in, undici.request out, bytes passed through, no validation, no
 * routing, one process). What it adds is the floor this machine sets for any Node
 * gateway; the gateway's figures are read against it.
 */
import { createServer } from "node:http"
import { Pool } from "undici"

const upstream = new Pool(`http://127.0.0.1:${process.env.UPSTREAM_PORT}`, { connections: 64 })

const server = createServer((req, res) => {
  const chunks: Array<Buffer> = []
  req.on("data", (c: Buffer) => chunks.push(c))
  req.on("end", async () => {
    try {
      const answer = await upstream.request({
        path: req.url ?? "/",
        method: "POST",
        headers: { "content-type": "application/json" },
        body: Buffer.concat(chunks)
      })
      res.writeHead(answer.statusCode, { "content-type": String(answer.headers["content-type"] ?? "application/json") })
      for await (const chunk of answer.body) res.write(chunk)
      res.end()
    } catch {
      res.writeHead(502).end()
    }
  })
})
server.keepAliveTimeout = 65_000
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  const address = server.address()
  process.stdout.write(`${typeof address === "object" && address !== null ? address.port : 0}\n`)
})
