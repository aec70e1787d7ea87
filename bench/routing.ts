/**
 * npm run bench:routing — where the money goes under each way of routing one request mix.
 *
 * A fleet of three fake OpenAI-compatible models on loopback, priced and paced like
 * today's tiers (latencies scaled down tenfold so that a run takes a minute or two):
 *   mini   $0.15 / $0.60 per Mtok   30 ms    right on 92% of easy and 35% of hard questions
 *   mid    $0.40 / $1.60            50 ms    96% and 65%
 *   large  $3.00 / $15.00          150 ms    98% and 90%
 * A request mix: easy questions (short prompts, short answers) and hard ones (long
 * prompts, long answers), 70/30, a third of requests repeating one asked before. Whether
 * a model gets a question right is fixed per (model, question), so a repeat gets the same
 * answer and a cache changes no quality. The same seeded mix goes to each route of one
 * gateway (SQLite ledger, in-process), REQUESTS requests, CONCURRENCY at a time:
 *   static       fallback [large, mid, mini]: the safe default, best model first
 *   cheapest     always the cheapest model
 *   conditional  prompts over 400 tokens (the hard questions) to large, the rest to mini (the operator's rule)
 *   adaptive     strategy: adaptive over the three, every answer labelled right or wrong
 *                through POST /v1/feedback; weights quality 1, cost 0.2, latency 0.05
 * and static and adaptive again with the response cache (`cache: { ttl_s }` on the route).
 * Reported per route: cost per 1,000 requests, client-side latency p50/p95, the share of
 * right answers, cache hits, and (adaptive) the share each model got over the last third.
 *
 * Options (env): REQUESTS=3000 CONCURRENCY=16 SEED=13
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { seededRandom } from "../src/providers/sim/seed"
import { startGateway } from "../test/support/gateway"

const REQUESTS = Number(process.env.REQUESTS ?? 3000)
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 16)
const SEED = Number(process.env.SEED ?? 13)

type Difficulty = "easy" | "hard"

interface Model {
  readonly id: string
  readonly price: { readonly input: number; readonly output: number }
  readonly latencyMs: number
  readonly accuracy: Record<Difficulty, number>
}

const FLEET: ReadonlyArray<Model> = [
  { id: "mini", price: { input: 0.15, output: 0.6 }, latencyMs: 30, accuracy: { easy: 0.92, hard: 0.35 } },
  { id: "mid", price: { input: 0.4, output: 1.6 }, latencyMs: 50, accuracy: { easy: 0.96, hard: 0.65 } },
  { id: "large", price: { input: 3, output: 15 }, latencyMs: 150, accuracy: { easy: 0.98, hard: 0.9 } }
]

const OUTPUT_TOKENS: Record<Difficulty, number> = { easy: 120, hard: 600 }

/** A stable draw in [0, 1) per (model, question): whether that model gets that question right. */
const hashUnit = (text: string): number => {
  let h = 2166136261
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619)
  return ((h >>> 0) % 1_000_000) / 1_000_000
}

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let text = ""
    req.on("data", (c: Buffer) => (text += c.toString()))
    req.on("end", () => resolve(text))
  })

/** The fleet: answers "right" or "wrong" after the model's latency, with usage from the prompt's size. */
const startFleet = async () => {
  const byId = new Map(FLEET.map((m) => [m.id, m]))
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const body = JSON.parse(await readBody(req)) as { model: string; messages: Array<{ content: string }> }
    const model = byId.get(body.model)!
    const prompt = body.messages.map((m) => m.content).join("\n")
    const [, difficulty, question] = /\[(easy|hard) (q\d+)\]/.exec(prompt) ?? ["", "easy", "q0"]
    const level = difficulty as Difficulty
    const right = hashUnit(`${model.id}/${question}`) < model.accuracy[level]
    const completion = OUTPUT_TOKENS[level]
    const promptTokens = Math.ceil(prompt.length / 4)
    // Longer answers take longer: the model's pace plus a share per output token.
    const delay = model.latencyMs * (1 + completion / 600)
    setTimeout(() => {
      res.writeHead(200, { "content-type": "application/json" })
      res.end(JSON.stringify({
        id: `chatcmpl-${model.id}`,
        object: "chat.completion",
        created: 1_700_000_000,
        model: model.id,
        choices: [{ index: 0, message: { role: "assistant", content: right ? `right:${question}` : `wrong:${question}`, refusal: null }, logprobs: null, finish_reason: "stop" }],
        usage: { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion }
      }))
    }, delay)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, close: () => new Promise<void>((r) => server.close(() => r())) }
}

interface Question {
  readonly id: string
  readonly difficulty: Difficulty
  readonly text: string
}

const CONTEXT = "The following record lists shipments, their routes and their customs codes in detail. ".repeat(60)

/** The mix: 70% easy, 30% hard; a third of requests repeat a question asked before. */
const requestMix = (count: number, seed: number): ReadonlyArray<Question> => {
  const random = seededRandom(seed)
  const asked: Array<Question> = []
  const mix: Array<Question> = []
  for (let i = 0; i < count; i++) {
    if (asked.length > 0 && random() < 1 / 3) {
      mix.push(asked[Math.floor(random() * asked.length)]!)
      continue
    }
    const difficulty: Difficulty = random() < 0.7 ? "easy" : "hard"
    const id = `q${asked.length}`
    const text = difficulty === "easy"
      ? `[easy ${id}] What is the capital of country number ${id}? Answer in one word.`
      : `[hard ${id}] ${CONTEXT}Given the record above, reconcile the customs codes for shipment ${id} and explain each step.`
    const question = { id, difficulty, text }
    asked.push(question)
    mix.push(question)
  }
  return mix
}

const CONFIG = (upstream: string) => `
defaults:
  retry: { max_attempts: 1 }
models:
${FLEET.map((m) => `  - { id: ${m.id}, provider: openai, base_url: "${upstream}", price: { input: ${m.price.input}, output: ${m.price.output} } }`).join("\n")}
routes:
  - { id: static, targets: [large, mid, mini] }
  - { id: static-cached, targets: [large, mid, mini], cache: { ttl_s: 3600 } }
  - { id: cheapest, strategy: cheapest, targets: [mini, mid, large] }
  - id: conditional
    strategy: conditional
    targets: [mini]
    rules:
      - { when: { prompt_tokens: { gt: 400 } }, to: large }
  - id: adaptive
    strategy: adaptive
    targets: [mini, mid, large]
    adaptive: { weights: { quality: 1, cost: 0.2, latency: 0.05 }, exploration: 0.1, memory: 200 }
  - id: adaptive-cached
    strategy: adaptive
    targets: [mini, mid, large]
    adaptive: { weights: { quality: 1, cost: 0.2, latency: 0.05 }, exploration: 0.1, memory: 200 }
    cache: { ttl_s: 3600 }
`

interface Outcome {
  readonly costUsd: number
  readonly latencyMs: number
  readonly right: boolean
  readonly hit: boolean
  readonly deployment: string
}

const percentile = (xs: ReadonlyArray<number>, p: number) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

const run = async (gatewayUrl: string, route: string, mix: ReadonlyArray<Question>, labels: boolean): Promise<ReadonlyArray<Outcome>> => {
  const outcomes: Array<Outcome> = new Array(mix.length)
  let next = 0
  const worker = async () => {
    while (next < mix.length) {
      const i = next++
      const question = mix[i]!
      const t0 = performance.now()
      const response = await fetch(`${gatewayUrl}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: route, temperature: 0, max_tokens: 1000, messages: [{ role: "user", content: question.text }] })
      })
      const body = (await response.json()) as { choices?: Array<{ message: { content: string } }> }
      const latencyMs = performance.now() - t0
      if (response.status !== 200) throw new Error(`${route}: ${response.status} ${JSON.stringify(body)}`)
      const right = body.choices![0]!.message.content.startsWith("right")
      const hit = (response.headers.get("x-quorum-cache") ?? "").startsWith("hit")
      outcomes[i] = { costUsd: Number(response.headers.get("x-quorum-cost-usd")), latencyMs, right, hit, deployment: response.headers.get("x-quorum-deployment") ?? "cache" }
      // The operator's signal: every answer a model gave is judged (a cache hit was judged when first given).
      if (labels && !hit) {
        const labelled = await fetch(`${gatewayUrl}/v1/feedback`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ id: response.headers.get("x-request-id"), correct: right })
        })
        if (labelled.status !== 200) throw new Error(`feedback: ${labelled.status} ${await labelled.text()}`)
      }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  return outcomes
}

const usd = (x: number) => `$${x.toFixed(4)}`
const pct = (x: number) => `${(100 * x).toFixed(1)}%`

const summary = (route: string, outcomes: ReadonlyArray<Outcome>, baseline: number | undefined) => {
  const cost = outcomes.reduce((s, o) => s + o.costUsd, 0)
  const perThousand = (cost / outcomes.length) * 1000
  const latencies = outcomes.map((o) => o.latencyMs)
  const tail = outcomes.slice(-Math.floor(outcomes.length / 3))
  const shares = FLEET.map((m) => `${m.id} ${pct(tail.filter((o) => o.deployment === m.id).length / tail.length)}`).join(", ")
  return {
    route,
    cost: perThousand,
    row: `| ${route} | ${usd(perThousand)} | ${baseline === undefined ? "—" : pct(perThousand / baseline - 1)} | ${percentile(latencies, 50).toFixed(0)} / ${percentile(latencies, 95).toFixed(0)} ms | ${pct(outcomes.filter((o) => o.right).length / outcomes.length)} | ${pct(outcomes.filter((o) => o.hit).length / outcomes.length)} | ${shares} |`
  }
}

const main = async () => {
  const fleet = await startFleet()
  const gateway = await startGateway(CONFIG(fleet.url))
  try {
    const mix = requestMix(REQUESTS, SEED)
    const hard = mix.filter((q) => q.difficulty === "hard").length
    const distinct = new Set(mix.map((q) => q.id)).size
    console.log(`bench:routing: ${REQUESTS} requests (${pct(hard / REQUESTS)} hard, ${distinct} distinct questions), ${CONCURRENCY} at a time, seed ${SEED}\n`)
    console.log("| route | cost / 1k requests | vs static | latency p50 / p95 | right answers | cache hits | models, last third |")
    console.log("|---|---|---|---|---|---|---|")
    let baseline: number | undefined
    for (const route of ["static", "static-cached", "cheapest", "conditional", "adaptive", "adaptive-cached"]) {
      const outcomes = await run(gateway.url, route, mix, route.startsWith("adaptive"))
      const line = summary(route, outcomes, baseline)
      baseline ??= line.cost
      console.log(line.row)
    }
    const beliefs = (await (await fetch(`${gateway.url}/v1/routes/adaptive/beliefs`)).json()) as { data: Array<{ target: string; mean_quality: number; mean_cost_usd: number | null; mean_latency_ms: number | null; score: number }> }
    console.log("\nadaptive's beliefs at the end (GET /v1/routes/adaptive/beliefs):")
    for (const b of beliefs.data) {
      console.log(`  ${b.target}: quality ${b.mean_quality.toFixed(3)}, cost ${b.mean_cost_usd === null ? "—" : usd(b.mean_cost_usd)}, latency ${b.mean_latency_ms?.toFixed(0) ?? "—"} ms, score ${b.score.toFixed(3)}`)
    }
  } finally {
    await gateway.close()
    await fleet.close()
  }
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
