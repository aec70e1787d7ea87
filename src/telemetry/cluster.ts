/**
 * /metrics across node:cluster workers. A scrape reaches one worker; that worker asks the
 * primary, which gathers every worker's registry through prom-client's AggregatorRegistry
 * (counters and histograms summed, gauges by their aggregator) and answers over the IPC
 * channel. A gateway without cluster workers answers from its own registry.
 */
import cluster from "node:cluster"
import { randomUUID } from "node:crypto"
import { AggregatorRegistry, type Registry } from "prom-client"

interface Ask {
  readonly type: "quorum:metrics?"
  readonly id: string
}

interface Answer {
  readonly type: "quorum:metrics"
  readonly id: string
  readonly text?: string
  readonly error?: string
}

const isAnswer = (m: unknown): m is Answer => typeof m === "object" && m !== null && (m as Answer).type === "quorum:metrics"
const isAsk = (m: unknown): m is Ask => typeof m === "object" && m !== null && (m as Ask).type === "quorum:metrics?"

/** Long enough for every worker to answer under load; a scrape that takes longer is answered by this worker alone. */
const ASK_TIMEOUT_MS = 5000

/** In a worker: which registry the primary's AggregatorRegistry collects. */
export const reportToPrimary = (registry: Registry): void => {
  AggregatorRegistry.setRegistries([registry])
  // prom-client installs a worker's answering listener when an AggregatorRegistry is made in it.
  new AggregatorRegistry()
}

/** In the primary: answers workers that ask for the whole cluster's metrics. */
export const answerWorkers = (): void => {
  const aggregator = new AggregatorRegistry()
  cluster.on("message", (worker, message: unknown) => {
    if (!isAsk(message)) return
    aggregator.clusterMetrics().then(
      (text) => worker.send({ type: "quorum:metrics", id: message.id, text } satisfies Answer),
      (error: unknown) => worker.send({ type: "quorum:metrics", id: message.id, error: String(error) } satisfies Answer)
    )
  })
}

const askPrimary = (): Promise<string | undefined> =>
  new Promise((resolve) => {
    const id = randomUUID()
    const done = (text: string | undefined) => {
      clearTimeout(timer)
      process.off("message", onMessage)
      resolve(text)
    }
    const onMessage = (message: unknown) => {
      if (isAnswer(message) && message.id === id) done(message.text)
    }
    const timer = setTimeout(() => done(undefined), ASK_TIMEOUT_MS)
    process.on("message", onMessage)
    // A primary gone (the worker exits with it) fails the send: the timer answers.
    process.send?.({ type: "quorum:metrics?", id } satisfies Ask, undefined, undefined, () => undefined)
  })

/** The exposition text a scrape gets: the cluster's when this is a worker, else this process's. */
export const metricsText = async (registry: Registry): Promise<string> => {
  if (cluster.isWorker && process.send !== undefined) {
    const text = await askPrimary()
    if (text !== undefined) return text
    return `# The primary did not answer in ${ASK_TIMEOUT_MS} ms: this worker's metrics only\n${await registry.metrics()}`
  }
  return registry.metrics()
}

export const CONTENT_TYPE: string = AggregatorRegistry.PROMETHEUS_CONTENT_TYPE
