/**
 * The `quorum` command as an operator runs it: a child process against a real gateway
 * (keys, spend, the ledger through the admin API) and against config files (check).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { execFile, spawn } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { freePort } from "./support/free-port"
import { type RunningGateway, startGateway } from "./support/gateway"
import { cleanEnv, PACKAGE_ROOT } from "./support/spawned"

const ADMIN = "admin-secret-for-cli-tests"

const YAML = `
models:
  - { id: fast, provider: sim, price: { input: 1, output: 2 }, sim: { latency_ms: 1, answers: ["Paris"] } }
auth: { mode: keys }
spend: { flush_ms: 5 }
`

let gateway: RunningGateway

beforeAll(async () => {
  gateway = await startGateway(YAML, { QUORUM_ADMIN_KEY: ADMIN })
}, 60_000)
afterAll(async () => {
  await gateway?.close()
})

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** `quorum <args>`, as the package's bin runs it. */
const quorum = async (args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Run> => {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(PACKAGE_ROOT, "scripts", "quorum.mjs"), ...args], {
      cwd: PACKAGE_ROOT,
      env: cleanEnv({ QUORUM_URL: gateway.url, QUORUM_ADMIN_KEY: ADMIN, NO_COLOR: "1", ...env }),
      timeout: 60_000
    })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string }
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" }
  }
}

/** Waits until the ledger writer has nothing pending: its rows are written in batches. */
const flushed = async () => {
  for (let i = 0; i < 500; i++) {
    const status = (await (await fetch(`${gateway.url}/admin/ledger`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { pending: number }
    if (status.pending === 0) return
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error("the ledger did not flush")
}

const chat = (key: string) =>
  fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: "fast", messages: [{ role: "user", content: "Capital of France?" }] })
  })

describe("quorum keys, spend and ledger", () => {
  it("creates a key that works, shows its spend and requests, and revokes it", async () => {
    const created = await quorum(["keys", "create", "--name", "team-a", "--budget-usd", "5", "--rpm", "100"])
    expect(created.code).toBe(0)
    const secret = /\n {2}(qk-[A-Za-z0-9_-]+)\n/.exec(created.stdout)?.[1]
    const id = /Created (key_[A-Za-z0-9_-]+)/.exec(created.stdout)?.[1]
    expect(secret).toBeDefined()
    expect(created.stdout).toContain("Budget: 5 USD per month; rpm 100")
    expect((await chat(secret!)).status).toBe(200)

    const list = await quorum(["keys", "list"])
    expect(list.stdout).toMatch(new RegExp(`${id}\\s+team-a\\s+qk-\\S+\\s+active`))
    expect(list.stdout).not.toContain(secret!)

    await flushed()
    const spend = await quorum(["spend", "--group-by", "key,model"])
    expect(spend.stdout).toMatch(/team-a\s+fast\s+1\s+0\s+\d+\s+\d+\s+0\.\d{6}/)

    const tail = await quorum(["ledger", "tail", "--limit", "5"])
    expect(tail.stdout).toMatch(new RegExp(`200\\s+/v1/chat/completions\\s+fast\\s+${id}`))

    const revoked = await quorum(["keys", "revoke", id!])
    expect(revoked.stdout).toContain(`Revoked ${id} (team-a)`)
    expect((await chat(secret!)).status).toBe(401)
  }, 120_000)

  it("follows the ledger as requests are recorded", async () => {
    const created = await quorum(["keys", "create", "--name", "follower"])
    const secret = /\n {2}(qk-[A-Za-z0-9_-]+)\n/.exec(created.stdout)![1]!
    const id = /Created (key_[A-Za-z0-9_-]+)/.exec(created.stdout)![1]!
    const child = spawn(process.execPath, [join(PACKAGE_ROOT, "scripts", "quorum.mjs"), "ledger", "tail", "--follow", "--limit", "1"], {
      cwd: PACKAGE_ROOT,
      env: cleanEnv({ QUORUM_URL: gateway.url, QUORUM_ADMIN_KEY: ADMIN, NO_COLOR: "1" })
    })
    let out = ""
    const seen = (pattern: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const check = () => pattern.test(out) && resolve()
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString()
          check()
        })
        child.stderr.on("data", (d: Buffer) => {
          out += d.toString()
          check()
        })
        child.once("exit", () => reject(new Error(`quorum ledger tail exited: ${out}`)))
        check()
      })
    try {
      // Its first page printed (or said there is none): it is following now.
      await seen(/\/v1\/chat\/completions|no requests yet/)
      expect((await chat(secret)).status).toBe(200)
      await seen(new RegExp(`200\\s+/v1/chat/completions\\s+fast\\s+${id}`))
    } finally {
      child.kill()
    }
  }, 60_000)

  it("says what to do when the admin key is wrong, missing, or the gateway is not there", async () => {
    const wrong = await quorum(["keys", "list"], { QUORUM_ADMIN_KEY: "not-the-key" })
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toMatch(/^quorum: the gateway answered 401: /)
    expect(wrong.stderr).not.toContain("not-the-key")
    const missing = await quorum(["keys", "list"], { QUORUM_ADMIN_KEY: "" })
    expect(missing.stderr).toContain("no admin key: set QUORUM_ADMIN_KEY")
    const away = await quorum(["spend"], { QUORUM_URL: `http://127.0.0.1:${await freePort()}` })
    expect(away.code).toBe(1)
    expect(away.stderr).toContain("cannot reach the gateway")
  }, 60_000)
})

describe("quorum check", () => {
  const dir = mkdtempSync(join(tmpdir(), "quorum-check-"))

  it("summarizes a good config, and names what is wrong in a bad one", async () => {
    const good = join(dir, "good.yaml")
    writeFileSync(good, `${YAML}\nroutes:\n  - { id: main, strategy: fallback, targets: [fast] }\n`)
    const ok = await quorum(["check", "--config", good])
    expect(ok.code).toBe(0)
    expect(ok.stdout).toContain(`Config from ${good}: OK`)
    expect(ok.stdout).toMatch(/main\s+fallback\s+fast/)

    const bad = join(dir, "bad.yaml")
    writeFileSync(bad, "models:\n  - { id: x, provider: nowhere }\n")
    const failed = await quorum(["check", "--config", bad])
    expect(failed.code).toBe(1)
    expect(failed.stderr).toMatch(/quorum: configuration error: .*provider/)
  }, 60_000)
})
