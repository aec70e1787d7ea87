/**
 * `quorum keys` with tags and policies, as an operator runs it: a child process against a
 * real gateway, the key created with them, listed with them, and a policy the config does
 * not define refused with the admin API's message.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { join } from "node:path"
import { promisify } from "node:util"
import { type RunningGateway, startGateway } from "./support/gateway"
import { cleanEnv, PACKAGE_ROOT } from "./support/spawned"

const ADMIN = "admin-secret-for-key-cli-tests"

const YAML = `
models:
  - { id: fast, provider: sim, sim: { latency_ms: 1, answers: ["Paris"] } }
policies:
  - { name: no-secrets, checks: [{ type: pii, kinds: [secret] }], action: block, models: [fast] }
auth: { mode: keys }
`

let gateway: RunningGateway

beforeAll(async () => {
  gateway = await startGateway(YAML, { QUORUM_ADMIN_KEY: ADMIN })
}, 60_000)
afterAll(async () => {
  await gateway?.close()
})

const quorum = async (args: ReadonlyArray<string>) => {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(PACKAGE_ROOT, "scripts", "quorum.mjs"), ...args], {
      cwd: PACKAGE_ROOT,
      env: cleanEnv({ QUORUM_URL: gateway.url, QUORUM_ADMIN_KEY: ADMIN, NO_COLOR: "1" }),
      timeout: 60_000
    })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string }
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" }
  }
}

describe("quorum keys with tags and policies", () => {
  it("creates a key with them, lists them, and refuses a policy the config does not define", async () => {
    const created = await quorum(["keys", "create", "--name", "staff", "--tags", "internal, eu", "--policies", "no-secrets"])
    expect(created.code).toBe(0)
    expect(created.stdout).toContain("Tags: internal, eu; policies: no-secrets")
    const id = /Created (key_[A-Za-z0-9_-]+)/.exec(created.stdout)?.[1]
    const list = await quorum(["keys", "list"])
    expect(list.stdout).toMatch(new RegExp(`${id}\\s+staff\\s.*internal,eu\\s+no-secrets`))
    const refused = await quorum(["keys", "create", "--name", "bad", "--policies", "no-such-policy"])
    expect(refused.code).not.toBe(0)
    expect(refused.stdout + refused.stderr).toContain("no-such-policy")
  }, 120_000)
})
