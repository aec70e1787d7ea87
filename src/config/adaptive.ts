/**
 * A learned route as the config writes it:
 *
 *   routes:
 *     - name: support
 *       strategy: adaptive
 *       targets: [{ deployment: small }, { deployment: large }]
 *       adaptive:
 *         weights: { quality: 1, cost: 0.3, latency: 0.1 }   # what a good outcome is
 *         exploration: 0.1     # at most this share of calls goes to a target believed worse
 *         memory: 200          # outcomes a belief weighs at most: older ones fade, so a change is followed
 */
import { Schema } from "effect"

const Weight = Schema.Number.pipe(Schema.between(0, 100))

export const AdaptiveSettings = Schema.Struct({
  weights: Schema.optionalWith(
    Schema.Struct({
      quality: Schema.optionalWith(Weight, { default: () => 1 }),
      cost: Schema.optionalWith(Weight, { default: () => 0 }),
      latency: Schema.optionalWith(Weight, { default: () => 0 })
    }),
    { default: () => ({ quality: 1, cost: 0, latency: 0 }) }
  ),
  exploration: Schema.optionalWith(Schema.Number.pipe(Schema.between(0, 1)), { default: () => 0.1 }),
  memory: Schema.optionalWith(Schema.Int.pipe(Schema.between(2, 100_000)), { default: () => 200 })
})
export type AdaptiveSettings = typeof AdaptiveSettings.Type

/** An adaptive route's settings when it gives none. */
export const DEFAULT_ADAPTIVE: AdaptiveSettings = Schema.decodeUnknownSync(AdaptiveSettings)({})
