/** A wrong config stops start-up with a message naming the file, the key and what is expected. */
import { NodeContext } from "@effect/platform-node"
import { ConfigProvider, Effect, Either, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { loadConfig, parseConfigText, resolveConfig } from "../src/app/load-config"
import { freePort } from "./support/free-port"
import { cleanEnv, GATEWAY_ENTRY } from "./support/spawned"

const resolve = (yaml: string, env: Record<string, string> = {}) =>
  Effect.runPromise(
    Effect.either(
      Effect.flatMap(parseConfigText(yaml, "quorum.yaml"), (file) => resolveConfig(file, "quorum.yaml", { kind: "file", path: "quorum.yaml" }))
    ).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
  )

const failure = async (yaml: string, env: Record<string, string> = {}) => {
  const result = await resolve(yaml, env)
  if (Either.isRight(result)) throw new Error("expected the config to be refused")
  return result.left.message
}

describe("a wrong config", () => {
  it("names a bad provider and the allowed ones", async () => {
    const message = await failure("models:\n  - { id: a, provider: opneai }")
    expect(message).toMatch(/^quorum\.yaml: models\[0\]\.provider: /)
    expect(message).toContain("\"openai\"")
    expect(message).toContain("\"opneai\"")
  })

  it("names a routing strategy that is not one, and the strategies there are", async () => {
    const message = await failure("models:\n  - { id: a, provider: sim }\nroutes:\n  - { id: r, strategy: round_robbin, targets: [a] }")
    expect(message).toMatch(/^quorum\.yaml: routes\[0\]\.strategy: "round_robbin" is not a routing strategy/)
    expect(message).toContain("\"round_robin\"")
  })

  it("names an unknown key", async () => {
    const message = await failure("models:\n  - { id: a, provider: sim, pricee: {} }")
    expect(message).toContain("models[0].pricee")
  })

  it("names a route target that is no model", async () => {
    const message = await failure("models:\n  - { id: a, provider: sim }\nroutes:\n  - { id: r, targets: [a, b] }")
    expect(message).toBe("quorum.yaml: routes[0].targets[1]: \"b\" is not a model id; expected one of a")
  })

  it("names a key variable that is not set", async () => {
    const message = await failure("models:\n  - { id: a, provider: openai, api_key_env: MY_KEY }")
    expect(message).toBe("quorum.yaml: models[0].api_key_env: environment variable MY_KEY is not set")
  })

  it("says which key a known provider needs", async () => {
    const message = await failure("models:\n  - { id: a, provider: anthropic }")
    expect(message).toContain("set ANTHROPIC_API_KEY")
  })

  it("names a duplicate id", async () => {
    const message = await failure("models:\n  - { id: a, provider: sim }\n  - { id: a, provider: sim }")
    expect(message).toContain("models[1]")
    expect(message).toContain("\"a\"")
  })

  it("names a base_url that is not a URL", async () => {
    const message = await failure("models:\n  - { id: a, provider: vllm, base_url: localhost:8000 }")
    expect(message).toContain("models[0].base_url")
    expect(message).toContain("http:// or https://")
  })

  it("refuses a retry budget on one model: it spans every model a request tries", async () => {
    const message = await failure("models:\n  - { id: a, provider: sim, retry: { budget_ms: 100 } }")
    expect(message).toContain("models[0].retry.budget_ms")
  })

  it("keeps the consensus names for the consensus engine", async () => {
    expect(await failure("models:\n  - { id: consensus, provider: sim }")).toContain("models[0].id")
    expect(await failure("models:\n  - { id: a, provider: sim }\nconsensus:\n  presets: [{ id: p, models: [a, z] }]")).toContain("consensus.presets[0].models[1]")
  })

  it("names a declared evaluator's bad pattern or unknown model", async () => {
    const base = "models:\n  - { id: a, provider: sim }\nconsensus:\n  evaluators:\n"
    expect(await failure(`${base}    - { name: r, type: regex, pattern: "(" }`)).toContain("consensus.evaluators[0].pattern")
    expect(await failure(`${base}    - { name: j, type: llm_judge, model: z, instructions: x }`)).toContain("consensus.evaluators[0].model")
  })

  it("refuses mistake_rate or style on a sim model with fixed answers, which says exactly those", async () => {
    const message = await failure("models:\n  - { id: a, provider: sim, sim: { answers: [x], mistake_rate: 0.2 } }")
    expect(message).toContain("models[0].sim.mistake_rate")
    expect(message).toContain("fixed answers")
    expect(await failure("models:\n  - { id: a, provider: sim, sim: { style: chatty } }")).toContain("models[0].sim.style")
  })

  it("names a YAML syntax error with its line", async () => {
    const message = await failure("models:\n  - id: a\n   provider: sim")
    expect(message).toMatch(/^quorum\.yaml: not valid YAML: .*line 3/s)
  })

  it("says a file that cannot be read", async () => {
    const result = await Effect.runPromise(Effect.either(loadConfig("/nonexistent/quorum.yaml")).pipe(Effect.provide(NodeContext.layer)))
    expect(Either.isLeft(result) && result.left.message).toContain("/nonexistent/quorum.yaml: cannot read the config file")
  })
})

describe("a good config", () => {
  it("takes keys from the environment, presets and defaults", async () => {
    const result = await resolve(
      `
defaults:
  timeouts: { connect_ms: 1000 }
models:
  - { id: fast, provider: openai, model: gpt-4o-mini }
  - { id: local, provider: vllm, base_url: "http://127.0.0.1:8000/v1/", timeouts: { idle_ms: 5 } }
routes:
  - { id: default, strategy: loadbalance, targets: [{ model: fast, weight: 3 }, local] }
`,
      { OPENAI_API_KEY: "sk-abc-123456" }
    )
    if (Either.isLeft(result)) throw new Error(result.left.message)
    const config = result.right
    const fast = config.deployments.get("fast")!
    expect(fast.baseUrl).toBe("https://api.openai.com/v1")
    expect(Redacted.value(fast.apiKey!)).toBe("sk-abc-123456")
    expect(fast.upstreamModel).toBe("gpt-4o-mini")
    // From the catalog: $0.15 / $0.60 / $0.075 cached per 1M tokens, in picodollars per token.
    expect(fast.price).toEqual({ tiers: [{ aboveInputTokens: 0, input: 150_000, output: 600_000, cachedInput: 75_000 }], source: "catalog 2025-11-01" })
    expect(fast.maxOutputTokens).toBe(16_384)
    expect(fast.timeouts.connectMs).toBe(1000)
    const local = config.deployments.get("local")!
    expect(local.baseUrl).toBe("http://127.0.0.1:8000/v1")
    expect(local.apiKey).toBeUndefined()
    expect(local.timeouts).toMatchObject({ connectMs: 1000, idleMs: 5 })
    expect(config.routes.get("default")).toEqual({
      id: "default",
      strategy: "loadbalance",
      targets: [{ deployment: "fast", weight: 3 }, { deployment: "local", weight: 1 }]
    })
    expect(config.secrets).toEqual(["sk-abc-123456"])
  })
})

describe("without a config file", () => {
  const load = (env: Record<string, string>) =>
    Effect.runPromise(loadConfig(undefined).pipe(
      Effect.provide(NodeContext.layer),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
    ))

  it("registers the usual models of each provider key in the environment", async () => {
    const config = await load({ OPENAI_API_KEY: "sk-1234567890", GEMINI_API_KEY: "AIza1234567890" })
    expect(config.source).toEqual({ kind: "env", keys: ["OPENAI_API_KEY", "GEMINI_API_KEY"] })
    expect([...config.deployments.keys()]).toEqual(expect.arrayContaining(["gpt-4o-mini", "gemini-2.5-flash"]))
    expect([...config.deployments.values()].every((d) => d.provider === "openai" || d.provider === "gemini")).toBe(true)
  })

  it("gives the models of the environment a `default` route, so that model: \"default\" works with a key alone", async () => {
    const config = await load({ OPENAI_API_KEY: "sk-1234567890" })
    const route = config.routes.get("default")
    expect(route?.strategy).toBe("fallback")
    // Every registered model, each once.
    expect(route!.targets.map((t) => t.deployment).sort()).toEqual([...config.deployments.keys()].sort())
    expect(route!.targets[0]!.deployment).toBe("gpt-4o")
  })

  it("tries each provider's first model before a second model of the same provider", async () => {
    const config = await load({ OPENAI_API_KEY: "sk-1234567890", ANTHROPIC_API_KEY: "sk-ant-1234567890", DEEPSEEK_API_KEY: "sk-1234567891" })
    const order = config.routes.get("default")!.targets.map((t) => config.deployments.get(t.deployment)!.provider)
    expect(order.slice(0, 3)).toEqual(["openai", "anthropic", "deepseek"])
    expect(order.slice(3)).not.toHaveLength(0)
  })

  it("serves the simulated demo fleet when there is no key either", async () => {
    const config = await load({})
    expect(config.source).toEqual({ kind: "demo" })
    expect([...config.deployments.values()].every((d) => d.provider === "sim")).toBe(true)
    expect([...config.deployments.keys()]).toEqual(expect.arrayContaining(["sim-fast", "sim-smart", "sim-flaky"]))
    expect([...config.routes.keys()]).toEqual(["default", "balanced"])
    // Without fixed answers: the demo's models work theirs out from the prompt.
    expect([...config.deployments.values()].every((d) => d.sim?.answers === undefined)).toBe(true)
  })

  it("says at start-up which keys registered models, and the default route's order; model: \"default\" is listed", async () => {
    const port = await freePort()
    const child = spawn(process.execPath, [GATEWAY_ENTRY], {
      env: cleanEnv({ OPENAI_API_KEY: "sk-test-1234567890", PORT: String(port), QUORUM_WORKERS: "1", QUORUM_DATA_DIR: mkdtempSync(join(tmpdir(), "quorum-data-")) }),
      detached: true
    })
    try {
      let output = ""
      const started = new Promise<void>((resolve, reject) => {
        const read = (d: Buffer) => {
          output += d.toString()
          if (output.includes("listening")) resolve()
        }
        child.stdout!.on("data", read)
        child.stderr!.on("data", read)
        child.once("exit", () => reject(new Error(`the gateway stopped: ${output}`)))
      })
      await started
      expect(output).toContain("models of the provider keys found in the environment (OPENAI_API_KEY; no config file)")
      expect(output).toContain("route default falls back over them: gpt-4o → gpt-4o-mini")
      expect(output).not.toContain("sk-test-1234567890")
      const models = (await (await fetch(`http://127.0.0.1:${port}/v1/models`)).json()) as { data: Array<{ id: string }> }
      expect(models.data.map((m) => m.id)).toEqual(expect.arrayContaining(["default", "gpt-4o"]))
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, "SIGKILL")
    }
  }, 60_000)

  it("serves the demo fleet, and says why, when the only key is of a provider without usual models", async () => {
    const config = await load({ OPENROUTER_API_KEY: "sk-or-1234567890" })
    expect(config.source).toEqual({ kind: "demo", keysWithoutModels: ["OPENROUTER_API_KEY"] })
  })

  it("reads QUORUM_CONFIG", async () => {
    const result = await Effect.runPromise(Effect.either(loadConfig(undefined)).pipe(
      Effect.provide(NodeContext.layer),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["QUORUM_CONFIG", "/nonexistent/q.yaml"]])))
    ))
    expect(Either.isLeft(result) && result.left.message).toContain("/nonexistent/q.yaml")
  })
})
