/**
 * npm run bench:consensus — the consensus engine against what voting theory promises.
 *
 * Five simulated models with known accuracies, latencies and prices answer 4-choice
 * questions through the real engine (router, evaluators, voting, early stop); only the
 * upstreams are simulated, in-process. Each model's answer to a question is fixed by a
 * seeded draw: right with its accuracy, else one of the three wrong letters, or (with
 * correlated errors) the question's one "trap" answer that fools models together.
 *
 * Reported: accuracy with a 95 % Wilson interval against the best single model and the
 * exact optimum for independent voters (weighted majority with log-odds weights,
 * enumerated over all 4^5 outcomes); cost per correct answer; latency percentiles; calls
 * saved by early stopping, and whether early stopping ever changed an answer; the time
 * consensus adds beyond the slowest model it waited for; scoring time for five 2 KB
 * answers. Latency figures come from a separate run at LATENCY_CONCURRENCY, so that
 * they show the engine rather than 64 requests queueing for two cores.
 * Options (env): QUESTIONS=2000 CONCURRENCY=64 LATENCY_QUESTIONS=300 LATENCY_CONCURRENCY=4
 */
import { Effect, Layer, ManagedRuntime } from "effect"
import answerMatch from "../evaluators/answer-match"
import consistency from "../evaluators/consistency"
import { GatewayConfig } from "../src/config/gateway-config"
import { parseConfigText, resolveConfig } from "../src/app/load-config"
import { Consensus } from "../src/consensus/engine"
import { Evaluators } from "../src/consensus/evaluators"
import { normalize } from "../src/consensus/normalize"
import type { ConsensusReport } from "../src/consensus/request"
import { reliabilityWeight } from "../src/domain/weights"
import { contentText } from "../src/protocol/chat-request"
import { usageOf } from "../src/protocol/chat-response"
import { completion } from "../src/providers/build"
import { newId } from "../src/domain/ids"
import type { ProviderClient } from "../src/providers/provider"
import { UpstreamError } from "../src/providers/upstream-error"
import { Upstreams } from "../src/providers/upstreams"
import { CircuitBreakers } from "../src/routing/circuit-breaker"
import { Router } from "../src/routing/router"

const QUESTIONS = Number(process.env.QUESTIONS ?? 2000)
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64)
const LATENCY_QUESTIONS = Number(process.env.LATENCY_QUESTIONS ?? 300)
const LATENCY_CONCURRENCY = Number(process.env.LATENCY_CONCURRENCY ?? 4)
const LETTERS = ["A", "B", "C", "D"] as const

const MODELS = [
  { id: "m1", accuracy: 0.8, latency: [40, 90], price: { input: 3, output: 15 } },
  { id: "m2", accuracy: 0.72, latency: [20, 60], price: { input: 1, output: 4 } },
  { id: "m3", accuracy: 0.68, latency: [15, 45], price: { input: 0.5, output: 2 } },
  { id: "m4", accuracy: 0.64, latency: [10, 35], price: { input: 0.25, output: 1 } },
  { id: "m5", accuracy: 0.6, latency: [10, 30], price: { input: 0.1, output: 0.4 } }
] as const

/** A deterministic uniform draw in [0, 1) for (question, model, purpose). */
const draw = (...keys: ReadonlyArray<string | number>): number => {
  let h = 2166136261
  for (const ch of keys.join("|")) h = Math.imul(h ^ ch.charCodeAt(0), 16777619)
  h = Math.imul(h ^ (h >>> 15), 2246822507)
  h = Math.imul(h ^ (h >>> 13), 3266489909)
  return ((h ^ (h >>> 16)) >>> 0) / 2 ** 32
}

const truth = (q: number) => LETTERS[Math.floor(draw(q, "truth") * 4)]!
const trap = (q: number) => {
  const wrong = LETTERS.filter((l) => l !== truth(q))
  return wrong[Math.floor(draw(q, "trap") * 3)]!
}

const answerOf = (q: number, model: (typeof MODELS)[number], correlation: number): string => {
  if (draw(q, model.id, "right") < model.accuracy) return truth(q)
  if (draw(q, model.id, "shared") < correlation) return trap(q)
  const wrong = LETTERS.filter((l) => l !== truth(q))
  return wrong[Math.floor(draw(q, model.id, "wrong") * 3)]!
}

const simulated = (correlation: number) =>
  Upstreams.make({
    redact: (text: string) => text,
    client: (id: string): ProviderClient => {
      const model = MODELS.find((m) => m.id === id)!
      return {
        complete: (request) => {
          const q = Number(/Q(\d+)/.exec(contentText(request.messages.at(-1)!.content))![1])
          const [low, high] = model.latency
          const latency = low + draw(q, id, "latency") * (high - low)
          return Effect.sleep(latency).pipe(Effect.as(completion({
            id: newId("sim"),
            model: id,
            content: `The answer is ${answerOf(q, model, correlation)}.`,
            toolCalls: [],
            finishReason: "stop",
            usage: usageOf(40, 6)
          })))
        },
        stream: () => Effect.fail(new UpstreamError({ kind: "unsupported", message: "not simulated" }))
      }
    }
  })

const yaml = `
defaults: { retry: { max_attempts: 1 } }
consensus: { default_fanout: 5, max_fanout: 5, min_agreement: 0, timeout_ms: 10000 }
models:
${MODELS.map((m) => `  - { id: ${m.id}, provider: sim, weight: ${reliabilityWeight(m.accuracy, 4)}, price: { input: ${m.price.input}, output: ${m.price.output} } }`).join("\n")}
`

/** P(weighted plurality is right) for independent voters, wrong answers uniform: all 4^n outcomes. */
const optimum = (): number => {
  const weights = MODELS.map((m) => reliabilityWeight(m.accuracy, 4))
  let total = 0
  const outcomes = 4 ** MODELS.length
  for (let o = 0; o < outcomes; o++) {
    let p = 1
    const votes = [0, 0, 0, 0] // index 0 = the right answer
    let rest = o
    for (const [i, m] of MODELS.entries()) {
      const answer = rest % 4
      rest = Math.floor(rest / 4)
      p *= answer === 0 ? m.accuracy : (1 - m.accuracy) / 3
      votes[answer]! += weights[i]!
    }
    const top = Math.max(...votes)
    const tied = votes.filter((v) => Math.abs(v - top) < 1e-12).length
    if (Math.abs(votes[0]! - top) < 1e-12) total += p / tied
  }
  return total
}

const wilson = (correct: number, n: number): [number, number] => {
  const z = 1.96
  const p = correct / n
  const centre = (p + (z * z) / (2 * n)) / (1 + (z * z) / n)
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / (1 + (z * z) / n)
  return [centre - half, centre + half]
}

const percentile = (values: ReadonlyArray<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN
}

const runScenario = async (correlation: number, earlyStop: boolean, questions = QUESTIONS, concurrency = CONCURRENCY) => {
  const file = await Effect.runPromise(parseConfigText(yaml, "bench"))
  const config = await Effect.runPromise(resolveConfig(file, "bench", { kind: "demo" }))
  const layer = Consensus.Default.pipe(
    Layer.provideMerge(Evaluators.Default),
    Layer.provideMerge(Router.DefaultWithoutDependencies),
    Layer.provideMerge(Layer.mergeAll(Layer.succeed(Upstreams, simulated(correlation)), CircuitBreakers.Default)),
    Layer.provideMerge(Layer.succeed(GatewayConfig, config))
  )
  const runtime = ManagedRuntime.make(layer)
  const consensus = await runtime.runPromise(Consensus)
  const reports: Array<ConsensusReport> = new Array(questions)
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < questions) {
      const q = next++
      reports[q] = await runtime.runPromise(consensus.run({ prompt: `Q${q}: which letter?`, early_stop: earlyStop }, {}))
    }
  }))
  await runtime.dispose()
  return reports
}

const main = async () => {
  console.log(`# bench:consensus  ${QUESTIONS} questions, 4 choices, ${MODELS.length} models, concurrency ${CONCURRENCY}`)
  console.log(`models: ${MODELS.map((m) => `${m.id} p=${m.accuracy} ${m.latency[0]}-${m.latency[1]} ms $${m.price.input}/$${m.price.output}`).join("; ")}\n`)
  const best = MODELS[0]
  // Scoring first, on a fresh heap: it measures the function, not the state left by the rest.
  const rows: Array<string> = []
  const scored = scoring()
  for (const correlation of [0, 0.5]) {
    const early = await runScenario(correlation, true)
    const full = await runScenario(correlation, false)
    const correct = early.filter((r, q) => normalize(r.answer.content ?? "").key === truth(q)).length
    const [low, high] = wilson(correct, QUESTIONS)
    const changed = early.filter((r, q) => normalize(r.answer.content ?? "").key !== normalize(full[q]!.answer.content ?? "").key).length
    const calls = QUESTIONS * MODELS.length
    const cancelled = early.reduce((n, r) => n + r.candidates.filter((c) => c.status === "cancelled").length, 0)
    const cost = early.reduce((sum, r) => sum + Number(r.cost_usd), 0)
    const singleCorrect = full.filter((r, q) => normalize(r.candidates.find((c) => c.model === best.id)!.content!).key === truth(q)).length
    const singleCost = full.reduce((sum, r) => sum + Number(r.candidates.find((c) => c.model === best.id)!.cost_usd ?? 0), 0)
    const timedEarly = await runScenario(correlation, true, LATENCY_QUESTIONS, LATENCY_CONCURRENCY)
    const timedFull = await runScenario(correlation, false, LATENCY_QUESTIONS, LATENCY_CONCURRENCY)
    const singleLatency = timedFull.map((r) => r.candidates.find((c) => c.model === best.id)!.latency_ms!)
    const overhead = timedFull.map((r) => r.latency_ms - Math.max(...r.candidates.map((c) => c.latency_ms ?? 0)))
    const latencies = timedEarly.map((r) => r.latency_ms)
    rows.push(
      `## ${correlation === 0 ? "independent errors" : `correlated errors (a wrong model picks the shared trap answer with probability ${correlation})`}`,
      "",
      "| | value |",
      "|---|---|",
      `| consensus accuracy (early stop on) | ${(correct / QUESTIONS).toFixed(4)} (95 % CI ${low.toFixed(4)}–${high.toFixed(4)}) |`,
      ...(correlation === 0 ? [`| optimum for independent voters (exact) | ${optimum().toFixed(4)} ${optimum() >= low && optimum() <= high ? "(inside the interval)" : "(OUTSIDE the interval)"} |`] : []),
      `| best single model (${best.id}), measured | ${(singleCorrect / QUESTIONS).toFixed(4)} (nominal ${best.accuracy}) |`,
      `| answers changed by early stopping | ${changed} of ${QUESTIONS} |`,
      `| calls saved by early stopping | ${cancelled} of ${calls} (${((100 * cancelled) / calls).toFixed(1)} %) |`,
      `| cost per correct answer, consensus | $${((cost / correct) * 1e6).toFixed(2)} per million answers |`,
      `| cost per correct answer, ${best.id} alone | $${((singleCost / singleCorrect) * 1e6).toFixed(2)} per million answers |`,
      `| consensus latency p50 / p90 / p99 (ms; ${LATENCY_QUESTIONS} questions at concurrency ${LATENCY_CONCURRENCY}, early stop on) | ${percentile(latencies, 50).toFixed(1)} / ${percentile(latencies, 90).toFixed(1)} / ${percentile(latencies, 99).toFixed(1)} |`,
      `| ${best.id} alone, latency p50 / p90 / p99 (ms) | ${percentile(singleLatency, 50).toFixed(1)} / ${percentile(singleLatency, 90).toFixed(1)} / ${percentile(singleLatency, 99).toFixed(1)} |`,
      `| added beyond the slowest model waited for, p50 / p99 (ms; same, early stop off) | ${percentile(overhead, 50).toFixed(2)} / ${percentile(overhead, 99).toFixed(2)} |`,
      ""
    )
  }
  rows.push(scored)
  console.log(rows.join("\n"))
}

/** Scoring five 2 KB answers (answer_match + consistency), fresh texts each time. */
const scoring = (): string => {
  const words = ["alpha", "beta", "gamma", "delta", "answer", "model", "the", "of", "consensus", "value"]
  let k = 0
  const text = () => {
    let s = ""
    while (s.length < 2000) s += `${words[Math.floor(draw("w", k++) * words.length)]} `
    return s.slice(0, 2000)
  }
  const request = { model: "consensus", messages: [{ role: "user" as const, content: "q" }] }
  const times: Array<number> = []
  for (let r = 0; r < 1100; r++) {
    const base = text()
    const candidates = Array.from({ length: 5 }, (_, i) => ({ id: String(i), model: `m${i}`, content: i < 3 ? `${base.slice(0, 1990)}${i}` : text() }))
    const t = performance.now()
    answerMatch.evaluate({ request, candidates, options: {} })
    consistency.evaluate({ request, candidates, options: {} })
    if (r >= 100) times.push(performance.now() - t)
  }
  return `## scoring five 2 KB answers (answer_match + consistency)\n\np50 ${percentile(times, 50).toFixed(3)} ms, p99 ${percentile(times, 99).toFixed(3)} ms (${times.length} runs)\n`
}

main().then(() => process.exit(0), (error) => {
  console.error(error)
  process.exit(1)
})
