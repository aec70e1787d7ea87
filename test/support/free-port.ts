import { createServer } from "node:net"

const tryListen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer()
    server.once("error", () => resolve(false))
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)))
  })

/**
 * A loopback port nobody listens on, for a server started in another process. Drawn
 * below the kernel's ephemeral range (32768 and up here), so that the servers other
 * tests start on port 0 meanwhile cannot take it before that process binds it.
 */
export const freePort = async (): Promise<number> => {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000)
    if (await tryListen(port)) return port
  }
}
