/**
 * The waves of calls a consensus makes: all at once (parallel, full), or for a cascade
 * the fewest most reliable models first, then more while the outcome is open, each wave
 * recorded with why it started.
 */
import type { Mode } from "./mode"
import type { Observed, Policy } from "./learning/policy"
import { candidateAt } from "./round"

export interface WaveReport {
  readonly models: ReadonlyArray<string>
  readonly reason: string
}

export class Waves {
  readonly launched = new Set<number>()
  private readonly waves: Array<WaveReport> = []
  private readonly wave = new Map<number, number>()
  /** When the running wave is hedged (performance.now() time). */
  hedgeAt = Number.POSITIVE_INFINITY

  constructor(private readonly models: ReadonlyArray<string>, private readonly mode: Mode, private readonly hedgeMs: number) {}

  /** The first wave: every model, or for a cascade what the policy asks for first. */
  first(policy: Policy): ReadonlyArray<number> {
    const all = this.models.map((_, i) => i)
    if (this.mode !== "cascade") return all
    const wanted = this.indices(policy.next(this.models, new Map()))
    return wanted.length === 0 ? all : wanted
  }

  firstReason(): string {
    return this.mode === "full"
      ? "full: every model, waiting for each"
      : this.mode === "parallel"
      ? "parallel: every model at once, stopping once the rest cannot change the outcome"
      : "cascade: the fewest most reliable models whose agreement would settle the answer"
  }

  /** The policy's next models that are not called yet (empty: settled, or nothing left). */
  more(policy: Policy, observed: Observed): ReadonlyArray<number> {
    return this.indices(policy.next(this.models, observed)).filter((i) => !this.launched.has(i))
  }

  /**
   * A hedge: the wave the policy would call were the running calls never to answer, or,
   * when it would call none (the answers so far would then settle it), the most reliable
   * model not called yet, whose agreement may settle the outcome before the slow call ends.
   */
  hedge(policy: Policy, observed: Observed): ReadonlyArray<number> {
    const running = new Set(this.models.filter((m, i) => this.launched.has(i) && !observed.has(m)))
    const wave = this.indices(policy.next(this.models.filter((m) => !running.has(m)), observed)).filter((i) => !this.launched.has(i))
    if (wave.length > 0) return wave
    const uncalled = this.models.filter((_, i) => !this.launched.has(i))
    return this.indices(policy.next(uncalled, new Map()).slice(0, 1))
  }

  /** Why a cascade goes on once every call so far has answered. */
  escalationReason(arrivals: ReadonlyArray<{ readonly status: string; readonly abstained?: string | undefined } | undefined>): string {
    const lacking = [...this.launched].filter((i) => arrivals[i]?.status !== "ok" || arrivals[i]?.abstained !== undefined)
    return lacking.length > 0
      ? `open: ${lacking.map((i) => this.models[i]).join(", ")} abstained or failed`
      : "open: the answers so far do not settle the outcome (they disagree, or do not outweigh the models not called)"
  }

  start(indices: ReadonlyArray<number>, reason: string, now: number): void {
    for (const i of indices) {
      this.launched.add(i)
      this.wave.set(i, this.waves.length)
    }
    this.waves.push({ models: indices.map((i) => candidateAt(this.models, i)), reason })
    this.hedgeAt = now + this.hedgeMs
  }

  waveOf(i: number): number {
    return this.wave.get(i) ?? 0
  }

  report(): ReadonlyArray<WaveReport> {
    return this.waves
  }

  private indices(names: ReadonlyArray<string>): ReadonlyArray<number> {
    return names.flatMap((name) => {
      const i = this.models.indexOf(name)
      return i < 0 ? [] : [i]
    })
  }
}
