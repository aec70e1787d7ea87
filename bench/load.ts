/**
 * Load generators for bench:overhead. Closed loop: `connections` clients, each sending its
 * next request when the last is answered (latency under a given concurrency, and
 * throughput). Open loop: request i is due at t0 + i/rate whatever happened before, and
 * its latency is measured from then (no coordinated omission).
 */
import { Pool } from "undici"

export interface Target {
  readonly name: string
  readonly url: string
  /** Headers every request carries (a key, Portkey's provider and host). */
  readonly headers: Record<string, string>
  /** The model name to ask for. */
  readonly model: string
}

export interface Sample {
  /** ms per request: to the whole answer, or to the first body bytes of a stream. */
  readonly latencies: Array<number>
  errors: number
  /** The first error's status and body, to say what went wrong. */
  firstError?: string
  elapsedMs: number
}

const bodyFor = (model: string, stream: boolean) =>
  JSON.stringify({ model, ...(stream ? { stream: true } : { max_tokens: 50 }), messages: [{ role: "user", content: "What is the capital of France?" }] })

const once = async (pool: Pool, target: Target, body: string, stream: boolean, started: number, sample: Sample) => {
  try {
    const res = await pool.request({ path: "/v1/chat/completions", method: "POST", headers: { "content-type": "application/json", ...target.headers }, body })
    let first: number | undefined
    let text = ""
    for await (const chunk of res.body) {
      first ??= performance.now()
      if (res.statusCode !== 200 && text.length < 300) text += String(chunk)
    }
    const end = stream ? first ?? performance.now() : performance.now()
    if (res.statusCode !== 200) {
      sample.errors++
      sample.firstError ??= `${res.statusCode} ${text.slice(0, 300)}`
    } else sample.latencies.push(end - started)
  } catch (error) {
    sample.errors++
    sample.firstError ??= String(error)
  }
}

export const closedLoop = async (target: Target, options: { connections: number; requests?: number; seconds?: number; stream?: boolean }): Promise<Sample> => {
  const stream = options.stream === true
  const pool = new Pool(target.url, { connections: options.connections })
  const body = bodyFor(target.model, stream)
  const sample: Sample = { latencies: [], errors: 0, elapsedMs: 0 }
  const t0 = performance.now()
  const until = options.seconds === undefined ? Infinity : t0 + options.seconds * 1000
  let sent = 0
  const limit = options.requests ?? Infinity
  await Promise.all(Array.from({ length: options.connections }, async () => {
    while (sent < limit && performance.now() < until) {
      sent++
      await once(pool, target, body, stream, performance.now(), sample)
    }
  }))
  sample.elapsedMs = performance.now() - t0
  await pool.close()
  return sample
}

export const openLoop = async (target: Target, options: { rate: number; seconds: number }): Promise<Sample> => {
  const pool = new Pool(target.url, { connections: 256 })
  const body = bodyFor(target.model, false)
  const sample: Sample = { latencies: [], errors: 0, elapsedMs: 0 }
  const total = Math.round(options.rate * options.seconds)
  const pending: Array<Promise<void>> = []
  const t0 = performance.now() + 5
  let next = 0
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now()
      while (next < total && t0 + (next * 1000) / options.rate <= now) {
        pending.push(once(pool, target, body, false, t0 + (next * 1000) / options.rate, sample))
        next++
      }
      if (next < total) setImmediate(tick)
      else resolve()
    }
    tick()
  })
  await Promise.all(pending)
  sample.elapsedMs = performance.now() - t0
  await pool.close()
  return sample
}

export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN
}

export const median = (values: ReadonlyArray<number>): number => percentile(values, 50)
