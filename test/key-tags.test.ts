/**
 * Virtual keys with tags and content policies, over HTTP on real gateways (SQLite and
 * PostgreSQL ledgers) with an OpenAI fake upstream: the admin API keeps and checks them,
 * a conditional rule on `key_tags` routes a tagged key's requests and not an untagged
 * one's, a key's blocking policy refuses its request while another key's identical one is
 * answered, a key's redacting policy masks a streamed answer, an admin change is seen at
 * once on its worker, and a revoked key is refused by a replica that still holds its facts.
 */
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { FakeServer } from "./fakes/fake-server"
import { OPENAI_KEY, startOpenAIFake } from "./fakes/openai-fake"
import { type RunningGateway, startGateway } from "./support/gateway"
import { validateError } from "./support/openai-schemas"
import { type RunningPostgres, startPostgres } from "./support/postgres"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const ADMIN = "admin-secret-for-key-tag-tests"

let upstream: FakeServer
let pg: RunningPostgres

beforeAll(async () => {
  ;[upstream, pg] = await Promise.all([startOpenAIFake(), startPostgres()])
}, 120_000)
afterAll(async () => {
  await upstream?.close()
  await pg?.stop()
})

/** `no-refunds` and `mask-email` are default_on: false, so they apply only to the keys they are attached to. */
const yaml = (withPolicies = true) => `
models:
  - { id: cloud, provider: openai, base_url: "${upstream.url}/v1", price: { input: 1, output: 1 } }
  - { id: local, provider: openai, base_url: "${upstream.url}/v1" }
  - { id: spare, provider: openai, base_url: "${upstream.url}/v1" }
routes:
  - id: assistant
    strategy: conditional
    targets: [cloud]
    rules:
      - { when: { key_tags: [internal] }, to: local }
${withPolicies ? `policies:
  - { name: no-refunds, on: input, checks: [{ type: blocklist, words: [refund] }], action: block, default_on: false }
  - { name: mask-email, on: output, checks: [{ type: pii, kinds: [email] }], action: redact, default_on: false }` : ""}
auth: { mode: keys }
spend: { flush_ms: 5 }
cache: { ttl_s: 600 }
`

interface Setup {
  readonly name: string
  readonly env: () => Record<string, string>
}

let pgCount = 0
const setups: ReadonlyArray<Setup> = [
  { name: "SQLite", env: () => ({ QUORUM_DATA_DIR: mkdtempSync(join(tmpdir(), "quorum-keys-")) }) },
  { name: "PostgreSQL", env: () => ({ QUORUM_DATABASE_URL: pg.database(`key_tags_${++pgCount}`) }) }
]

describe.each(setups)("keys with tags and policies on $name", ({ env }) => {
  let gateway: RunningGateway
  /** A second gateway on the same database: another replica, with its own cache of key facts. */
  let replica: RunningGateway
  let shared: Record<string, string>

  beforeAll(async () => {
    shared = { OPENAI_API_KEY: OPENAI_KEY, QUORUM_ADMIN_KEY: ADMIN, ...env() }
    gateway = await startGateway(yaml(), shared)
    replica = await startGateway(yaml(), shared)
  }, 60_000)
  afterAll(async () => {
    await replica?.close()
    await gateway?.close()
  })

  const admin = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${gateway.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    return { status: response.status, body: (await response.json()) as any }
  }

  const newKey = async (spec: Record<string, unknown>) => {
    const created = await admin("POST", "/admin/keys", { name: "test", ...spec })
    expect(created.status).toBe(201)
    return created.body as { id: string; key: string; tags: Array<string>; policies: Array<string> }
  }

  const chat = async (key: string, model: string, content: string, on: RunningGateway = gateway) => {
    const response = await fetch(`${on.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model, messages: [{ role: "user", content }] })
    })
    return { status: response.status, headers: response.headers, body: (await response.json()) as any }
  }

  const streamed = async (key: string, model: string, content: string) => {
    const client = new OpenAI({ apiKey: key, baseURL: `${gateway.url}/v1` })
    let text = ""
    for await (const chunk of await client.chat.completions.create({ model, stream: true, messages: [{ role: "user", content }] })) {
      text += chunk.choices[0]?.delta.content ?? ""
    }
    return text
  }

  it("keeps a key's tags and policies through create, show, list and update, each once", async () => {
    const key = await newKey({ tags: ["internal", "eu", "internal"], policies: ["no-refunds"] })
    expect(key).toMatchObject({ tags: ["internal", "eu"], policies: ["no-refunds"] })
    expect((await admin("GET", `/admin/keys/${key.id}`)).body).toMatchObject({ tags: ["internal", "eu"], policies: ["no-refunds"] })
    const listed = (await admin("GET", "/admin/keys")).body.data.find((k: { id: string }) => k.id === key.id)
    expect(listed).toMatchObject({ tags: ["internal", "eu"], policies: ["no-refunds"] })
    const updated = await admin("PATCH", `/admin/keys/${key.id}`, { tags: ["batch"], policies: [] })
    expect(updated.status).toBe(200)
    expect(updated.body).toMatchObject({ tags: ["batch"], policies: [] })
    // A key created without them has none.
    expect(await newKey({})).toMatchObject({ tags: [], policies: [] })
  })

  it("refuses a policy the config does not define, naming it, on create and on update", async () => {
    const created = await admin("POST", "/admin/keys", { name: "bad", policies: ["no-refunds", "no-sarcasm"] })
    expect(created.status).toBe(400)
    expect(validateError(created.body)).toEqual([])
    expect(created.body.error).toMatchObject({ param: "policies[1]", code: "policy_not_found" })
    expect(created.body.error.message).toContain("`no-sarcasm`")
    expect(created.body.error.message).toContain("no-refunds, mask-email")
    const key = await newKey({})
    const updated = await admin("PATCH", `/admin/keys/${key.id}`, { policies: ["nope"] })
    expect(updated.status).toBe(400)
    expect(updated.body.error).toMatchObject({ param: "policies[0]", code: "policy_not_found" })
    expect((await admin("GET", `/admin/keys/${key.id}`)).body.policies).toEqual([])
    const badTag = await admin("POST", "/admin/keys", { name: "bad", tags: ["has space"] })
    expect(badTag.status).toBe(400)
    expect(badTag.body.error.message).toContain("tags")
  })

  it("routes a key tagged internal by the key_tags rule, and an untagged key to the route's targets", async () => {
    const internal = await newKey({ tags: ["internal"] })
    const other = await newKey({ tags: ["external"] })
    const plain = await newKey({})
    const asked = await chat(internal.key, "assistant", "Where do I go?")
    expect(asked.status).toBe(200)
    expect(asked.headers.get("x-quorum-deployment")).toBe("local")
    for (const key of [other, plain]) {
      const answered = await chat(key.key, "assistant", "Where do I go?")
      expect(answered.status).toBe(200)
      expect(answered.headers.get("x-quorum-deployment")).toBe("cloud")
    }
  })

  it("sees a key's new tags at once on the worker that changed them", async () => {
    const key = await newKey({})
    expect((await chat(key.key, "assistant", "before")).headers.get("x-quorum-deployment")).toBe("cloud")
    expect((await admin("PATCH", `/admin/keys/${key.id}`, { tags: ["internal"] })).status).toBe(200)
    expect((await chat(key.key, "assistant", "after")).headers.get("x-quorum-deployment")).toBe("local")
  })

  it("blocks a request under the key's policy, naming it, while another key's same request is answered", async () => {
    const strict = await newKey({ policies: ["no-refunds"] })
    const lenient = await newKey({})
    const before = upstream.received.length
    const blocked = await chat(strict.key, "cloud", "I want a refund now")
    expect(blocked.status).toBe(400)
    expect(validateError(blocked.body)).toEqual([])
    expect(blocked.body.error).toMatchObject({ code: "content_policy_violation", param: "messages" })
    expect(blocked.body.error.message).toContain("`no-refunds`")
    expect(upstream.received.length).toBe(before)

    const answered = await chat(lenient.key, "cloud", "I want a refund now")
    expect(answered.status).toBe(200)
    expect(answered.body.choices[0].message.content).toBe("Echo: I want a refund now")
    // The refused request is still its key's in the ledger.
    const id = blocked.headers.get("x-request-id")
    let recorded: any
    for (let i = 0; i < 500 && recorded === undefined; i++) {
      const found = await admin("GET", `/admin/requests/${id}`)
      if (found.status === 200) recorded = found.body
      else await new Promise((r) => setTimeout(r, 10))
    }
    expect(recorded).toMatchObject({ key_id: strict.id, status: 400 })
  })

  it("holds a key's embeddings and consensus calls to its policy too, and no one else's", async () => {
    const strict = await newKey({ policies: ["no-refunds"] })
    const lenient = await newKey({})
    const embed = (key: string) => fetch(`${gateway.url}/v1/embeddings`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "cloud", input: "a refund, please" })
    })
    const blocked = await embed(strict.key)
    expect(blocked.status).toBe(400)
    expect(((await blocked.json()) as any).error.message).toContain("`no-refunds`")
    expect((await embed(lenient.key)).status).toBe(200)
    const consensus = await fetch(`${gateway.url}/v1/consensus`, {
      method: "POST",
      headers: { authorization: `Bearer ${strict.key}`, "content-type": "application/json" },
      body: JSON.stringify({ models: ["cloud", "local"], messages: [{ role: "user", content: "a refund, please" }] })
    })
    expect(consensus.status).toBe(400)
    expect(((await consensus.json()) as any).error).toMatchObject({ code: "content_policy_violation" })
  })

  it("redacts a streamed answer under the key's output policy, and not another key's", async () => {
    const masked = await newKey({ policies: ["mask-email"] })
    const plain = await newKey({})
    const text = await streamed(masked.key, "cloud", "Write to jane@example.com for help.")
    expect(text).toBe("Echo: Write to [REDACTED:email] for help.")
    expect(await streamed(plain.key, "cloud", "Write to jane@example.com for help.")).toBe("Echo: Write to jane@example.com for help.")
  })

  it("does not answer from the cache what was kept before the key's output policy was attached", async () => {
    const key = await newKey({})
    const ask = async () => {
      const response = await fetch(`${gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key.key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "cloud", temperature: 0, messages: [{ role: "user", content: "Mail jane@example.com" }] })
      })
      return { cache: response.headers.get("x-quorum-cache"), text: ((await response.json()) as any).choices[0].message.content as string }
    }
    expect(await ask()).toEqual({ cache: "miss", text: "Echo: Mail jane@example.com" })
    expect((await ask()).cache).toBe("hit (exact)")
    expect((await admin("PATCH", `/admin/keys/${key.id}`, { policies: ["mask-email"] })).status).toBe(200)
    expect(await ask()).toEqual({ cache: "miss", text: "Echo: Mail [REDACTED:email]" })
    expect(await ask()).toEqual({ cache: "hit (exact)", text: "Echo: Mail [REDACTED:email]" })
  })

  it("refuses a revoked key on a replica that still holds the key's facts", async () => {
    const key = await newKey({ tags: ["internal"] })
    // The replica reads the key's facts and keeps them for a moment.
    expect((await chat(key.key, "assistant", "hello", replica)).status).toBe(200)
    expect((await admin("DELETE", `/admin/keys/${key.id}`)).status).toBe(200)
    const refused = await chat(key.key, "assistant", "hello again", replica)
    expect(refused.status).toBe(401)
    expect(refused.body.error.message).toContain("was revoked")
  })

  it("holds a key to a budget it gained after a replica read its facts: the replica estimates the request's cost then", async () => {
    const key = await newKey({})
    expect((await chat(key.key, "cloud", "hello", replica)).status).toBe(200)
    // A budget below the request's worst case, set through the other gateway: the replica's facts say "no budget".
    expect((await admin("PATCH", `/admin/keys/${key.id}`, { budget_usd: 0.000001 })).status).toBe(200)
    const refused = await chat(key.key, "cloud", "hello again", replica)
    expect(refused.status).toBe(429)
    expect(refused.body.error).toMatchObject({ code: "insufficient_quota" })
  })

  it("refuses the requests of a key whose policy the config no longer defines, naming it", async () => {
    const key = await newKey({ policies: ["no-refunds"] })
    const changed = await startGateway(yaml(false), shared)
    try {
      const refused = await chat(key.key, "cloud", "hello", changed)
      expect(refused.status).toBe(500)
      expect(validateError(refused.body)).toEqual([])
      expect(refused.body.error).toMatchObject({ code: "policy_not_configured", type: "server_error" })
      expect(refused.body.error.message).toContain("`no-refunds`")
      // A key without it is served by the same gateway.
      expect((await chat((await newKey({})).key, "cloud", "hello", changed)).status).toBe(200)
    } finally {
      await changed.close()
    }
  })
})
