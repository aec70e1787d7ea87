/**
 * Live health per deployment, as the routing strategies and per-request limits read it:
 * recent latencies (whole answers and, for streams, time to first token), calls in flight,
 * and the share of recent calls that failed. Windows of the last calls rather than
 * all-time figures, so a deployment that slows down or recovers is seen within minutes.
 */

const WINDOW = 256

/** The last WINDOW samples; percentiles sort a copy (256 numbers: cheaper than keeping a sketch in order). */
class Window {
  private readonly samples: Array<number> = []
  private next = 0
  private sum = 0

  add(x: number): void {
    // While the window fills, `next` is its end, so nothing is replaced.
    const replaced = this.samples[this.next]
    if (replaced !== undefined) this.sum -= replaced
    this.samples[this.next] = x
    this.sum += x
    this.next = (this.next + 1) % WINDOW
  }

  get mean(): number {
    return this.samples.length === 0 ? 0 : this.sum / this.samples.length
  }

  get size(): number {
    return this.samples.length
  }

  /** The p-th percentile (0 < p ≤ 100) by nearest rank; undefined with no samples. */
  percentile(p: number): number | undefined {
    if (this.samples.length === 0) return undefined
    const sorted = [...this.samples].sort((a, b) => a - b)
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
  }
}

class Deployment {
  readonly latency = new Window()
  readonly firstToken = new Window()
  readonly failures = new Window()
  inFlight = 0
}

export interface HealthView {
  /** Latency at the percentile: of whole answers, or of first tokens when `stream`. */
  readonly latencyMs: (deployment: string, stream: boolean, percentile: number) => number | undefined
  readonly inFlight: (deployment: string) => number
  /** Share of the recent calls that failed, 0 with none seen. */
  readonly errorRate: (deployment: string) => number
}

export class LiveHealth implements HealthView {
  private readonly deployments = new Map<string, Deployment>()

  private of(id: string): Deployment {
    let d = this.deployments.get(id)
    if (d === undefined) this.deployments.set(id, (d = new Deployment()))
    return d
  }

  started(id: string): void {
    this.of(id).inFlight++
  }

  /** A call given up by the caller (the client left): no verdict on the deployment. */
  abandoned(id: string): void {
    const d = this.of(id)
    d.inFlight = Math.max(0, d.inFlight - 1)
  }

  /** A call ended: its latency counts only when it answered (a failure's time says little about speed). */
  finished(id: string, outcome: { readonly ok: boolean; readonly latencyMs?: number; readonly firstTokenMs?: number }): void {
    const d = this.of(id)
    d.inFlight = Math.max(0, d.inFlight - 1)
    d.failures.add(outcome.ok ? 0 : 1)
    if (outcome.ok && outcome.latencyMs !== undefined) d.latency.add(outcome.latencyMs)
    if (outcome.ok && outcome.firstTokenMs !== undefined) d.firstToken.add(outcome.firstTokenMs)
  }

  readonly latencyMs = (id: string, stream: boolean, percentile: number): number | undefined => {
    const d = this.deployments.get(id)
    return d === undefined ? undefined : (stream ? d.firstToken : d.latency).percentile(percentile)
  }

  readonly inFlight = (id: string): number => this.deployments.get(id)?.inFlight ?? 0

  readonly errorRate = (id: string): number => this.deployments.get(id)?.failures.mean ?? 0
}
