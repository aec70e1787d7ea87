/**
 * Portkey's open-source gateway, the TypeScript peer bench:overhead measures against:
 * installed from the npm registry into a folder of the system's temp directory (kept
 * across runs), with @hono/node-server 1.13.5 and hono 4.9.7 pinned by overrides (with
 * the versions npm picks today its streams fail), started headless in production mode.
 * It is pointed at an OpenAI-compatible upstream per request, by its headers.
 */
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startNode } from "./processes"

export const PORTKEY_VERSION = "1.15.2"

const install = (): string => {
  const dir = join(tmpdir(), `quorum-bench-portkey-${PORTKEY_VERSION}`)
  const entry = join(dir, "node_modules", "@portkey-ai", "gateway", "build", "start-server.js")
  if (existsSync(entry)) return entry
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, "package.json"), JSON.stringify({
    name: "quorum-bench-portkey",
    private: true,
    dependencies: { "@portkey-ai/gateway": PORTKEY_VERSION },
    overrides: { "@hono/node-server": "1.13.5", hono: "4.9.7" }
  }))
  // No install scripts: the package ships built; its postinstall only patches its own sources.
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"], { cwd: dir, stdio: "inherit" })
  return entry
}

export const startPortkey = async (port: number) => {
  const entry = install()
  const t0 = performance.now()
  const started = await startNode([entry, `--port=${port}`, "--headless"], { NODE_ENV: "production" }, /Ready for connections/)
  return { ...started, t0 }
}

/** The headers that send a request through Portkey to an OpenAI-compatible server. */
export const portkeyHeaders = (upstream: string): Record<string, string> => ({
  "x-portkey-provider": "openai",
  "x-portkey-custom-host": `${upstream}/v1`,
  authorization: "Bearer sk-bench"
})
