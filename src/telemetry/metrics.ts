/**
 * The gateway's Prometheus metrics: what an operator graphs and alerts on. Defined once
 * per process in its own registry (never prom-client's global one, so that tests can
 * run several gateways in one process); under node:cluster the primary sums the
 * workers' registries (cluster.ts). Labels are ids an operator chose (models, routes,
 * key ids), never prompt text or secrets.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client"

// Latency buckets from a cache hit (ms) to a long generation (minutes).
const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]

export const makeMetrics = () => {
  const registry = new Registry()
  const counter = <L extends string>(name: string, help: string, labelNames: ReadonlyArray<L>) => new Counter<L>({ name, help, labelNames, registers: [registry] })
  const histogram = <L extends string>(name: string, help: string, labelNames: ReadonlyArray<L>, buckets = SECONDS) =>
    new Histogram<L>({ name, help, labelNames, buckets, registers: [registry] })

  // The load shedder keeps its own counters (it runs before any request handling); they are read at scrape time.
  let shedding: { readonly inFlight: () => number; readonly shed: () => number } | undefined
  let shedSeen = 0
  new Gauge({
    name: "quorum_in_flight_requests",
    help: "Chat and consensus requests being answered now",
    registers: [registry],
    collect() {
      this.set(shedding?.inFlight() ?? 0)
    }
  })
  new Counter({
    name: "quorum_shed_requests_total",
    help: "Requests refused with 503 because the worker was at server.max_in_flight",
    registers: [registry],
    collect() {
      const total = shedding?.shed() ?? 0
      if (total > shedSeen) this.inc(total - shedSeen)
      shedSeen = total
    }
  })

  // Circuit states live in the router; they are read at scrape time, as the shedder's counters are.
  let circuits: (() => ReadonlyArray<readonly [model: string, level: number]>) | undefined
  new Gauge({
    name: "quorum_circuit_state",
    help: "Circuit per deployment: 0 closed, 1 probing, 2 open (the worst across workers)",
    labelNames: ["model"],
    registers: [registry],
    aggregator: "max",
    collect() {
      for (const [model, level] of circuits?.() ?? []) this.set({ model }, level)
    }
  })

  return {
    registry,
    watchShedding: (counters: { readonly inFlight: () => number; readonly shed: () => number }): void => {
      shedding = counters
    },
    watchCircuits: (states: () => ReadonlyArray<readonly [model: string, level: number]>): void => {
      circuits = states
    },
    requests: counter("quorum_requests_total", "Client requests answered, by endpoint, model asked for, key and HTTP status", ["endpoint", "model", "key", "status"]),
    duration: histogram("quorum_request_duration_seconds", "Time to answer a client request, to its last byte", ["endpoint", "model"]),
    firstToken: histogram("quorum_time_to_first_token_seconds", "Time from a streamed request to its first content chunk", ["model"]),
    tokens: counter("quorum_tokens_total", "Tokens of upstream calls, by deployment, provider and kind (prompt, completion)", ["model", "provider", "kind"]),
    cost: counter("quorum_cost_usd_total", "Upstream cost in USD, by deployment, provider and key", ["model", "provider", "key"]),
    upstreamErrors: counter("quorum_upstream_errors_total", "Failed upstream attempts, by deployment, provider and kind of failure", ["model", "provider", "kind"]),
    retries: counter("quorum_retries_total", "Attempts made again on the same deployment after a transient failure", ["model"]),
    fallbacks: counter("quorum_fallbacks_total", "Requests that moved on to a route's next target", ["route"]),
    consensusDecisions: counter("quorum_consensus_decisions_total", "Consensus requests by task and how they were decided (agreed, most_confident, fallback, failed)", ["task", "decision"]),
    consensusCalls: histogram("quorum_consensus_calls", "Model calls one consensus request made", ["task"], [1, 2, 3, 4, 5, 6, 8, 10, 12, 16]),
    consensusWaves: histogram("quorum_consensus_waves", "Waves of calls one consensus request took", ["task"], [1, 2, 3, 4, 5, 6]),
    cache: counter("quorum_cache_lookups_total", "Response cache lookups by result (hit_exact, hit_semantic, miss)", ["result"]),
    cacheSavedUsd: counter("quorum_cache_saved_usd_total", "Upstream cost cache hits did not spend", [])
  }
}

export type Metrics = ReturnType<typeof makeMetrics>

/** What a circuit's state is on the gauge. */
export const CIRCUIT_LEVEL = { closed: 0, probing: 1, open: 2 } as const
