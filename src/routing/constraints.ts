/**
 * Per-request limits: `quorum: {max_latency_ms, max_cost_usd}` in the body, or the headers
 * `x-quorum-max-latency-ms` and `x-quorum-max-cost-usd`. Only targets expected to answer
 * within the latency (their recent 90th percentile; time to first token for streams) and
 * whose worst-case cost for this request fits are tried, cheapest first. A target not yet
 * measured is not excluded by latency: nothing says it is slow.
 */
import { Either, Schema } from "effect"
import type { HealthView } from "./health"

export const RequestLimits = Schema.Struct({
  max_latency_ms: Schema.optional(Schema.Number.pipe(Schema.positive())),
  max_cost_usd: Schema.optional(Schema.Number.pipe(Schema.nonNegative()))
})
export type RequestLimits = typeof RequestLimits.Type

/** The percentile of recent latency a target is expected to stay within. */
export const LATENCY_PERCENTILE = 90

export interface Exclusion {
  readonly deployment: string
  readonly limit: "max_latency_ms" | "max_cost_usd"
  /** What the target is expected to take: ms, or USD. */
  readonly expected: number
  readonly allowed: number
}

export interface LimitInput {
  readonly health: HealthView
  readonly stream: boolean
  readonly costMicros: (deployment: string) => number
}

const exclusionOf = (deployment: string, limits: RequestLimits, input: LimitInput): Exclusion | undefined => {
  if (limits.max_cost_usd !== undefined) {
    const usd = input.costMicros(deployment) / 1e6
    if (usd > limits.max_cost_usd) return { deployment, limit: "max_cost_usd", expected: usd, allowed: limits.max_cost_usd }
  }
  if (limits.max_latency_ms !== undefined) {
    const ms = input.health.latencyMs(deployment, input.stream, LATENCY_PERCENTILE)
    if (ms !== undefined && ms > limits.max_latency_ms) return { deployment, limit: "max_latency_ms", expected: ms, allowed: limits.max_latency_ms }
  }
  return undefined
}

const hasLimits = (limits: RequestLimits | undefined): limits is RequestLimits =>
  limits !== undefined && (limits.max_cost_usd !== undefined || limits.max_latency_ms !== undefined)

/** The order narrowed to the targets that fit, cheapest first; or, when none fits, why each was left out. */
export const withinLimits = (
  order: ReadonlyArray<string>,
  limits: RequestLimits | undefined,
  input: LimitInput
): Either.Either<ReadonlyArray<string>, ReadonlyArray<Exclusion>> => {
  if (!hasLimits(limits)) return Either.right(order)
  const excluded: Array<Exclusion> = []
  const fit: Array<{ deployment: string; micros: number; rank: number }> = []
  for (const [rank, deployment] of order.entries()) {
    const exclusion = exclusionOf(deployment, limits, input)
    if (exclusion === undefined) fit.push({ deployment, micros: input.costMicros(deployment), rank })
    else excluded.push(exclusion)
  }
  if (fit.length === 0) return Either.left(excluded)
  return Either.right(fit.sort((a, b) => a.micros - b.micros || a.rank - b.rank).map((f) => f.deployment))
}

/** For the error: which limit excluded which model, never the prompt. */
export const describeExclusions = (exclusions: ReadonlyArray<Exclusion>): string =>
  exclusions
    .map((e) =>
      e.limit === "max_cost_usd"
        ? `${e.deployment}: worst-case cost $${e.expected.toFixed(6)} exceeds max_cost_usd ${e.allowed}`
        : `${e.deployment}: recent p${LATENCY_PERCENTILE} latency ${Math.round(e.expected)} ms exceeds max_latency_ms ${e.allowed}`
    )
    .join("; ")
