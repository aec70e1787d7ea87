/**
 * npm run bench:consensus-real — consensus over real HTTP on real models' recorded answers
 * (bench/data/consensus-real): the learning loop a pilot would run, end to end.
 *
 * For each file and model set (the top 5 by calibration accuracy on even ids; the best
 * model of each of the 5 best vendors, see vendorOf): a fresh gateway (the production
 * layers, in-process, SQLite in a temporary folder) in front of a loopback fake upstream
 * that speaks OpenAI's chat-completions wire format and replays each model's recorded
 * answer as a short natural reply ("The answer is 18.", or the output literal in a
 * python code block; a reply with no answer in it where the record is null), after a
 * per-model latency. Then:
 *   1. up to LABELS even-id items go through POST /v1/consensus with `mode: "full"`, each
 *      labelled with its truth through POST /v1/feedback;
 *   2. once GET /v1/reliability says the weights are learned, every odd-id item is answered
 *      with the defaults (no mode: the cascade, with its exploration share).
 * Reported for the odd items, next to the best single model, a plurality vote and a
 * log-odds vote computed offline on the same items (bench/consensus-real-data.ts), and
 * the offline replay of learnPolicy (bench:consensus-offline): accuracy, upstream calls
 * started per item (counted by the fake upstream), cost per correct answer (the gateway's
 * own cost figures, at the illustrative prices below), latency p50/p95 (client side).
 *
 * Latencies and prices are illustrative, not measured: latencies about a tenth of what
 * these models take (so the bench runs in minutes), prices list prices of late 2024 in
 * USD per million tokens; output tokens are what a worked answer of this kind takes
 * (reasoning models five times more).
 * Options (env): LABELS=300 CONCURRENCY=4 FEED_CONCURRENCY=16 FILES=gsm8k,cruxeval-o SETS=top-5,5-vendors
 * VERBOSE=1 (prints the first report of each run) UNLEARNED=1 (skips step 1: the defaults before any label)
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { learnPolicy, replayCascade } from "../src/consensus/learning/learn"
import { startGateway } from "../test/support/gateway"
import {
  baselines,
  FILES,
  type FileName,
  isEven,
  type Item,
  keyOf,
  labelled,
  loadItems,
  modelSets
} from "./consensus-real-data"

const LABELS = Number(process.env.LABELS ?? 300)
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 4)
const FEED_CONCURRENCY = Number(process.env.FEED_CONCURRENCY ?? 16)
const ONLY_FILES = (process.env.FILES ?? FILES.join(",")).split(",")
const ONLY_SETS = (process.env.SETS ?? "top-5,5-vendors").split(",")
const VERBOSE = process.env.VERBOSE === "1"
/** No labels at all: what the defaults give before any feedback (the issue's starting point). */
const UNLEARNED = process.env.UNLEARNED === "1"
const UPSTREAM_KEY = "sk-bench-consensus-real"

/** A deterministic uniform draw in [0, 1) for the given keys. */
const draw = (...keys: ReadonlyArray<string | number>): number => {
  let h = 2166136261
  for (const ch of keys.join("|")) h = Math.imul(h ^ ch.charCodeAt(0), 16777619)
  h = Math.imul(h ^ (h >>> 15), 2246822507)
  h = Math.imul(h ^ (h >>> 13), 3266489909)
  return ((h ^ (h >>> 16)) >>> 0) / 2 ** 32
}

// ---------------------------------------------------------------------------------------
// What each model costs and how long it takes (illustrative, see the top of the file)

const isReasoning = (model: string) => /^o1/i.test(model)
const isSmall = (model: string) => /(mini|haiku|flash|nemo|-[0-9]b|[^0-9][0-9]b-|2b|3b|7b|8b|9b|phi|gemma-2-9b|command-r$|reka-flash)/i.test(model)

/** Latency range in ms: reasoning models slowest, small models fastest. */
const latencyRange = (model: string): readonly [number, number] =>
  isReasoning(model) ? [200, 600] : isSmall(model) ? [25, 80] : [60, 180]

const latencyOf = (model: string, item: Item): number => {
  const [low, high] = latencyRange(model)
  return Math.round(low + draw(item.id, model, "latency") * (high - low))
}

/** USD per million tokens, input and output. */
const PRICES: ReadonlyArray<readonly [RegExp, number, number]> = [
  [/^o1-preview/, 15, 60],
  [/^o1-mini/, 3, 12],
  [/^gpt-4o-mini/, 0.15, 0.6],
  [/^gpt-4o-2024-08-06/, 2.5, 10],
  [/^(gpt-4o|chatgpt-4o)/, 5, 15],
  [/^gpt-4-turbo/, 10, 30],
  [/^gpt-4-0314/, 30, 60],
  [/^gpt-3.5/, 0.5, 1.5],
  [/^claude-3-5-sonnet/, 3, 15],
  [/^claude-3-opus/, 15, 75],
  [/^claude-3-5-haiku/, 1, 5],
  [/^claude-3-haiku/, 0.25, 1.25],
  [/^claude-3-sonnet/, 3, 15],
  [/^gemini-1.5-pro/, 1.25, 5],
  [/^gemini-1.5-flash/, 0.075, 0.3],
  [/^Mistral-Large/, 2, 6],
  [/405B/, 3.5, 3.5],
  [/70B|72B/, 0.9, 0.9],
  [/^deepseek/, 0.14, 0.28],
  [/^grok/, 2, 10],
  [/^(yi-large|reka-core)/, 3, 3]
]
const priceOf = (model: string): readonly [number, number] => {
  const row = PRICES.find(([re]) => re.test(model))
  return row === undefined ? [0.3, 0.3] : [row[1], row[2]]
}

const promptTokens = (item: Item) => Math.ceil(item.question.length / 4) + 20
const completionTokens = (file: FileName, model: string) => (file === "gsm8k" ? 250 : 200) * (isReasoning(model) ? 5 : 1)

/** What a call costs in USD at the illustrative prices (the gateway computes its own the same way). */
const callCost = (file: FileName, model: string, item: Item): number => {
  const [input, output] = priceOf(model)
  return (promptTokens(item) * input + completionTokens(file, model) * output) / 1e6
}

// ---------------------------------------------------------------------------------------
// Replies: what each model would have said, and the answer read back from a reply

/** The recorded answer as a short natural reply; a reply with no answer in it for null. */
const replyOf = (file: FileName, answer: string | null): string => {
  if (file === "gsm8k") return answer === null ? "I could not work this one out to a final number." : `The answer is ${answer}.`
  return answer === null ? "I am not sure what this function returns." : `\`\`\`python\n${answer}\n\`\`\``
}

/** The answer in a reply of ours (the inverse of replyOf), as a group key; null when none. */
const answerOfReply = (file: FileName, reply: string | null | undefined): string | null => {
  if (reply === null || reply === undefined) return null
  if (file === "gsm8k") {
    const m = /^The answer is (.+)\.$/.exec(reply.trim())
    return m === null ? null : keyOf(file, m[1]!)
  }
  const m = /^```python\n([\s\S]*)\n```$/.exec(reply.trim())
  return m === null ? null : keyOf(file, m[1]!)
}

// ---------------------------------------------------------------------------------------
// The fake upstream: OpenAI's chat completions, replaying the records

interface Upstream {
  readonly url: string
  /** Calls started, per item id (for the phase being measured). */
  readonly calls: Map<string, number>
  close(): Promise<void>
}

const ITEM_TAG = /^\[item ([^\]]+)\]/

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

const sendJson = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" })
  res.end(JSON.stringify(body))
}

interface ChatBody {
  readonly model?: unknown
  readonly stream?: unknown
  readonly messages?: ReadonlyArray<{ readonly role?: unknown; readonly content?: unknown }>
}

const lastUserText = (body: ChatBody): string => {
  const user = [...(body.messages ?? [])].reverse().find((m) => m.role === "user")
  if (typeof user?.content === "string") return user.content
  if (Array.isArray(user?.content)) {
    return user.content.map((part: unknown) => (typeof part === "object" && part !== null && "text" in part ? String(part.text) : "")).join("")
  }
  return ""
}

const startUpstream = async (file: FileName, items: ReadonlyMap<string, Item>): Promise<Upstream> => {
  const calls = new Map<string, number>()
  const server = createServer((req, res) => {
    void (async () => {
      const text = await readBody(req)
      if (req.url !== "/v1/chat/completions" || req.method !== "POST") {
        return sendJson(res, 404, { error: { message: `no route ${req.method} ${req.url}`, type: "invalid_request_error", param: null, code: null } })
      }
      if (req.headers.authorization !== `Bearer ${UPSTREAM_KEY}`) {
        return sendJson(res, 401, { error: { message: "Incorrect API key provided.", type: "invalid_request_error", param: null, code: "invalid_api_key" } })
      }
      const body = JSON.parse(text) as ChatBody
      const model = String(body.model)
      const tag = ITEM_TAG.exec(lastUserText(body))
      const item = tag === null ? undefined : items.get(tag[1]!)
      if (item === undefined || !item.raw.has(model) && !item.keys.has(model)) {
        return sendJson(res, 400, { error: { message: `no record for model ${model} on this prompt`, type: "invalid_request_error", param: "messages", code: null } })
      }
      calls.set(item.id, (calls.get(item.id) ?? 0) + 1)
      await new Promise((r) => setTimeout(r, latencyOf(model, item)))
      if (res.destroyed) return
      const content = replyOf(file, item.raw.get(model) ?? null)
      const usage = { prompt_tokens: promptTokens(item), completion_tokens: completionTokens(file, model), total_tokens: promptTokens(item) + completionTokens(file, model) }
      const id = `chatcmpl-replay-${item.id}-${model}`
      const created = 1_733_000_000
      if (body.stream === true) {
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
        const chunk = (delta: unknown, finish: string | null, extra: object = {}) =>
          `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...extra })}\n\n`
        res.write(chunk({ role: "assistant", content: "" }, null))
        res.write(chunk({ content }, null))
        res.write(chunk({}, "stop"))
        res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices: [], usage })}\n\n`)
        res.end("data: [DONE]\n\n")
        return
      }
      sendJson(res, 200, {
        id, object: "chat.completion", created, model,
        choices: [{ index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason: "stop" }],
        usage
      })
    })().catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: { message: String(error), type: "server_error", param: null, code: null } })
    })
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  }
}

// ---------------------------------------------------------------------------------------
// The gateway, and the client's side of the loop

/** Model ids for the gateway: the recorded names, with what config ids do not take replaced. */
const idOf = (model: string) => model.replace(/[^A-Za-z0-9._-]/g, "-")

const gatewayYaml = (file: FileName, models: ReadonlyArray<string>, upstreamUrl: string) => `
defaults:
  retry: { max_attempts: 1 }
consensus:
  default_fanout: ${models.length}
  max_fanout: ${models.length}
  timeout_ms: 60000
models:
${models.map((m) => `  - { id: ${JSON.stringify(idOf(m))}, provider: openai, model: ${JSON.stringify(m)}, base_url: "${upstreamUrl}/v1", price: { input: ${priceOf(m)[0]}, output: ${priceOf(m)[1]} }, max_tokens_default: ${completionTokens(file, m)} }`).join("\n")}
`

const promptOf = (item: Item) => `[item ${item.id}]\n${item.question}`

interface Sent {
  readonly status: number
  readonly body: unknown
  readonly ms: number
}

const post = async (url: string, body: unknown): Promise<Sent> => {
  const t = performance.now()
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
  const parsed: unknown = await response.json()
  return { status: response.status, body: parsed, ms: performance.now() - t }
}

const field = (value: unknown, ...path: ReadonlyArray<string>): unknown => {
  let v = value
  for (const key of path) v = typeof v === "object" && v !== null ? (v as Record<string, unknown>)[key] : undefined
  return v
}

/** Runs `work` over `items` with at most `concurrency` at a time, in order of start. */
const pool = async <A, B>(items: ReadonlyArray<A>, concurrency: number, work: (a: A, i: number) => Promise<B>): Promise<Array<B>> => {
  const out = new Array<B>(items.length)
  let next = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await work(items[i]!, i)
    }
  }))
  return out
}

const percentile = (values: ReadonlyArray<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN
}

interface Result {
  readonly file: FileName
  readonly set: string
  readonly models: ReadonlyArray<string>
  readonly n: number
  readonly best: string
  readonly single: number
  readonly singleCost: number
  readonly plurality: number
  readonly logOdds: number
  readonly offline: number
  readonly offlineCalls: number
  readonly quorum: number
  readonly calls: number
  readonly cost: number
  readonly p50: number
  readonly p95: number
  readonly rule: string
  readonly errors: number
  readonly vsSingle: readonly [number, number]
  readonly vsLogOdds: readonly [number, number]
}

/** Polls GET /v1/reliability until the task's weights are learned (recomputed off the request path). */
const waitLearned = async (url: string, task: string, timeoutMs = 60_000): Promise<string> => {
  const until = Date.now() + timeoutMs
  let last = ""
  while (Date.now() < until) {
    const response = await fetch(`${url}/v1/reliability?task=${encodeURIComponent(task)}`)
    last = await response.text()
    if (response.ok && /"learned"/.test(last)) return last
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`the weights of task ${task} were not learned within ${timeoutMs} ms; last /v1/reliability: ${last.slice(0, 500)}`)
}

const run = async (file: FileName, items: ReadonlyArray<Item>, setName: string, models: ReadonlyArray<string>): Promise<Result> => {
  const calibration = items.filter(isEven)
  const training = calibration.slice(0, LABELS)
  const test = items.filter((i) => !isEven(i))
  const task = `${file}-${setName}`
  const upstream = await startUpstream(file, new Map(items.map((i) => [i.id, i] as const)))
  const gateway = await startGateway(gatewayYaml(file, models, upstream.url), { OPENAI_API_KEY: UPSTREAM_KEY })
  const ids = models.map(idOf)
  try {
    // 1. Full runs on the labelled half, each labelled through the feedback endpoint.
    await pool(UNLEARNED ? [] : training, FEED_CONCURRENCY, async (item) => {
      const answered = await post(`${gateway.url}/v1/consensus`, { prompt: promptOf(item), models: ids, mode: "full", task })
      const id = field(answered.body, "id")
      if (VERBOSE && item === training[0]) console.error(JSON.stringify(answered.body, null, 1))
      if (answered.status !== 200 || typeof id !== "string") throw new Error(`consensus on ${item.id}: ${answered.status} ${JSON.stringify(answered.body).slice(0, 300)}`)
      const fed = await post(`${gateway.url}/v1/feedback`, { id, label: replyOf(file, item.truthText) })
      if (fed.status !== 200) throw new Error(`feedback on ${item.id}: ${fed.status} ${JSON.stringify(fed.body).slice(0, 300)}`)
    })
    const reliability = UNLEARNED ? "" : await waitLearned(gateway.url, task)
    const rule = UNLEARNED ? "none (no labels)" : `learned from ${/"labels"\s*:\s*(\d+)/.exec(reliability)?.[1] ?? "?"} labels`

    // 2. The held-out half with the defaults.
    upstream.calls.clear()
    const answers = await pool(test, CONCURRENCY, async (item) => {
      const answered = await post(`${gateway.url}/v1/consensus`, { prompt: promptOf(item), models: ids, task })
      if (answered.status !== 200) return { key: null, cost: 0, ms: answered.ms, error: true }
      return {
        key: answerOfReply(file, field(answered.body, "answer", "content") as string | null),
        cost: Number(field(answered.body, "cost_usd") ?? 0),
        ms: answered.ms,
        error: false
      }
    })

    // Offline, on the same items.
    const base = baselines(calibration, models)
    const policy = learnPolicy(training.map((i) => labelled(i, models)), new Map(models.map((m) => [m, 1] as const)))
    let single = 0, plurality = 0, logOdds = 0, offline = 0, offlineCalls = 0, quorum = 0, singleCost = 0, cost = 0
    const vsSingle: [number, number] = [0, 0]
    const vsLogOdds: [number, number] = [0, 0]
    for (const [i, item] of test.entries()) {
      const ok = answers[i]!.key === item.truth
      const singleOk = base.bestAnswer(item) === item.truth
      const logOddsOk = base.logOdds(item) === item.truth
      const replay = replayCascade(labelled(item, models).answers, models, policy.next, policy.weights)
      quorum += ok ? 1 : 0
      single += singleOk ? 1 : 0
      plurality += base.plurality(item) === item.truth ? 1 : 0
      logOdds += logOddsOk ? 1 : 0
      offline += replay.answer === item.truth ? 1 : 0
      offlineCalls += replay.calls
      singleCost += callCost(file, base.best, item)
      cost += answers[i]!.cost
      if (ok !== singleOk) vsSingle[ok ? 0 : 1] += 1
      if (ok !== logOddsOk) vsLogOdds[ok ? 0 : 1] += 1
    }
    const started = [...upstream.calls.values()].reduce((a, b) => a + b, 0)
    return {
      file, set: setName, models, n: test.length, best: base.best,
      single, singleCost: singleCost / single, plurality, logOdds, offline, offlineCalls: offlineCalls / test.length,
      quorum, calls: started / test.length, cost: cost / quorum,
      p50: percentile(answers.map((a) => a.ms), 50), p95: percentile(answers.map((a) => a.ms), 95),
      rule, errors: answers.filter((a) => a.error).length, vsSingle, vsLogOdds
    }
  } finally {
    await gateway.close()
    await upstream.close()
  }
}

const pct = (n: number, of: number) => ((100 * n) / of).toFixed(1)
const usd = (x: number) => `$${(x * 1000).toFixed(2)}`

const main = async () => {
  console.log(`# bench:consensus-real  ${UNLEARNED ? 0 : LABELS} labelled even-id items (mode full + POST /v1/feedback), then every odd-id item with the defaults, concurrency ${CONCURRENCY}\n`)
  const results: Array<Result> = []
  for (const file of FILES.filter((f) => ONLY_FILES.includes(f))) {
    const items = loadItems(file)
    for (const set of modelSets(items.filter(isEven)).filter((s) => ONLY_SETS.includes(s.name))) {
      const t = performance.now()
      const r = await run(file, items, set.name, set.models)
      results.push(r)
      console.error(`${file} ${set.name}: ${((performance.now() - t) / 1000).toFixed(0)} s`)
      console.log(`${file} ${set.name}: ${set.models.join(", ")}`)
    }
  }
  console.log("")
  console.log("| file | set | n | best single | plurality | log-odds | Quorum (HTTP) | vs single (+/−) | vs log-odds (+/−) | calls started / item | offline replay: accuracy, calls | cost per 1,000 correct: Quorum / best single | latency p50 / p95 (ms) | weights | errors |")
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
  for (const r of results) {
    console.log(
      `| ${r.file} | ${r.set} | ${r.n} | ${pct(r.single, r.n)} (${r.best}) | ${pct(r.plurality, r.n)} | ${pct(r.logOdds, r.n)} | **${pct(r.quorum, r.n)}** | +${r.vsSingle[0]}/−${r.vsSingle[1]} | +${r.vsLogOdds[0]}/−${r.vsLogOdds[1]} | ${r.calls.toFixed(2)} | ${pct(r.offline, r.n)}, ${r.offlineCalls.toFixed(2)} | ${usd(r.cost)} / ${usd(r.singleCost)} | ${r.p50.toFixed(0)} / ${r.p95.toFixed(0)} | ${r.rule} | ${r.errors} |`
    )
  }
}

main().then(() => process.exit(0), (error: unknown) => {
  console.error(error)
  process.exit(1)
})
