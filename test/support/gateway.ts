/** Starts a real gateway (the same layers as production) on a loopback port for a test. */
import { HttpServer } from "@effect/platform"
import { ConfigProvider, Context, Effect, Exit, Layer, Scope } from "effect"
import type { ResolvedConfig } from "../../src/config/gateway-config"
import { parseConfigText, resolveConfig } from "../../src/app/load-config"
import { ServerLive } from "../../src/app/server"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

export interface RunningGateway {
  readonly url: string
  readonly config: ResolvedConfig
  close(): Promise<void>
}

/** Each gateway gets its own SQLite ledger in a fresh folder, unless the test names a database. */
const withDataDir = (env: Record<string, string>): Record<string, string> =>
  env.QUORUM_DATA_DIR !== undefined || env.QUORUM_DATABASE_URL !== undefined
    ? env
    : { ...env, QUORUM_DATA_DIR: mkdtempSync(join(tmpdir(), "quorum-data-")) }

export const resolveTestConfig = (yaml: string, env: Record<string, string> = {}): Promise<ResolvedConfig> =>
  Effect.runPromise(
    Effect.flatMap(parseConfigText(yaml, "test.yaml"), (file) => resolveConfig(file, "test.yaml", { kind: "file", path: "test.yaml" })).pipe(
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(withDataDir(env)))))
    )
  )

export const startGateway = async (yaml: string, env: Record<string, string> = {}): Promise<RunningGateway> => {
  const config = await resolveTestConfig(yaml, env)
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(ServerLive(config, { host: "127.0.0.1", port: 0 }), scope))
  const address = Context.get(context, HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return {
    url: `http://127.0.0.1:${address.port}`,
    config,
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** Polls until `check` holds or the time is up; for effects that land after a response. */
export const eventually = async (check: () => boolean, ms = 2_000): Promise<boolean> => {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (check()) return true
    await new Promise((r) => setTimeout(r, 10))
  }
  return check()
}

/** Creates a virtual key through the admin API of the gateway at `url`; returns its secret. */
export const createKey = async (url: string, adminKey: string, spec: Record<string, unknown>): Promise<string> => {
  const created = await fetch(`${url}/admin/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
    body: JSON.stringify(spec)
  })
  if (created.status !== 201) throw new Error(`creating a key answered ${created.status}: ${await created.text()}`)
  return ((await created.json()) as { key: string }).key
}
