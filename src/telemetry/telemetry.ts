/**
 * The worker's metrics as a service: one registry per gateway, fed where a request ends
 * (Spend.finish has all of it: endpoint, model, key, status, latency, every upstream
 * attempt with its tokens, cost and failure) and by the load shedder's counters.
 */
import cluster from "node:cluster"
import { Context } from "effect"
import { makeMetrics, type Metrics } from "./metrics"
import { reportToPrimary } from "./cluster"

export interface AttemptFacts {
  readonly model: string
  readonly provider: string
  readonly status: string
  readonly errorKind: string | null
  readonly promptTokens: number
  readonly completionTokens: number
  readonly costMicros: number
}

export interface RequestFacts {
  readonly endpoint: string
  readonly model: string | null
  readonly keyId: string | null
  readonly status: number
  readonly latencyMs: number
  readonly attempts: ReadonlyArray<AttemptFacts>
}

/** A consensus request as the metrics count it. */
export interface ConsensusFacts {
  readonly task: string
  /** agreed, most_confident, fallback (one model, under a budget), or failed. */
  readonly decision: "agreed" | "most_confident" | "fallback" | "failed"
  readonly calls: number
  readonly waves: number
}

export interface TelemetryShape {
  readonly metrics: Metrics
  readonly requestFinished: (facts: RequestFacts) => void
  /** A stream's first chunk arrived from a deployment this long after its call began. */
  readonly firstToken: (model: string, ms: number) => void
  readonly consensusFinished: (facts: ConsensusFacts) => void
}

export class Telemetry extends Context.Tag("quorum/Telemetry")<Telemetry, TelemetryShape>() {}

export const makeTelemetry = (): TelemetryShape => {
  const metrics = makeMetrics()
  if (cluster.isWorker) reportToPrimary(metrics.registry)

  const count = (r: RequestFacts): void => {
    const model = r.model ?? "none"
    const key = r.keyId ?? "none"
    metrics.requests.inc({ endpoint: r.endpoint, model, key, status: String(r.status) })
    metrics.duration.observe({ endpoint: r.endpoint, model }, r.latencyMs / 1000)
    let previous: string | undefined
    for (const a of r.attempts) {
      if (a.promptTokens > 0) metrics.tokens.inc({ model: a.model, provider: a.provider, kind: "prompt" }, a.promptTokens)
      if (a.completionTokens > 0) metrics.tokens.inc({ model: a.model, provider: a.provider, kind: "completion" }, a.completionTokens)
      if (a.costMicros > 0) metrics.cost.inc({ model: a.model, provider: a.provider, key }, a.costMicros / 1e6)
      if (a.status === "error") metrics.upstreamErrors.inc({ model: a.model, provider: a.provider, kind: a.errorKind ?? "unknown" })
      // Another attempt on the same deployment is a retry; on another one, a fallback (consensus candidates aside).
      if (previous !== undefined && r.endpoint === "/v1/chat/completions") {
        if (previous === a.model) metrics.retries.inc({ model: a.model })
        else metrics.fallbacks.inc({ route: model })
      }
      previous = a.model
    }
  }

  /** Counting must never cost a request anything: a metrics failure is dropped. */
  const safely = (count: () => void): void => {
    try {
      count()
    } catch {
      // A missed count is only a missed count.
    }
  }

  return {
    metrics,
    firstToken: (model, ms) => safely(() => metrics.firstToken.observe({ model }, ms / 1000)),
    consensusFinished: (c) =>
      safely(() => {
        metrics.consensusDecisions.inc({ task: c.task, decision: c.decision })
        if (c.decision !== "failed") {
          metrics.consensusCalls.observe({ task: c.task }, c.calls)
          metrics.consensusWaves.observe({ task: c.task }, c.waves)
        }
      }),
    requestFinished: (r) => {
      // Counting must never cost a request its billing: a metrics failure is dropped.
      try {
        count(r)
      } catch {
        // The ledger is what bills; a missed count is only a missed count.
      }
    }
  }
}
