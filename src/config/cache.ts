/**
 * The cache as the config writes it, on the whole gateway or a route (`cache:`); absent,
 * nothing is cached:
 *
 *   cache:
 *     ttl_s: 3600          # how long an answer is served again
 *     max_mb: 64           # per worker, least recently used out first
 *     sampled: false       # also cache requests with temperature > 0 (their answers vary by design)
 *     semantic:            # also serve an answer to a request that means the same (opt-in)
 *       model: embedder    # a configured embeddings model
 *       threshold: 0.95    # cosine similarity from which two requests count as the same
 */
import { Schema } from "effect"

export const SemanticSettings = Schema.Struct({
  model: Schema.String.pipe(Schema.minLength(1)),
  threshold: Schema.optionalWith(Schema.Number.pipe(Schema.between(0.5, 1)), { default: () => 0.95 }),
  /** Requests remembered for similarity search, per worker. */
  max_entries: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 1_000_000)), { default: () => 10_000 })
})
export type SemanticSettings = typeof SemanticSettings.Type

export const CacheSettings = Schema.Struct({
  ttl_s: Schema.optionalWith(Schema.Number.pipe(Schema.between(1, 30 * 86_400)), { default: () => 3600 }),
  max_mb: Schema.optionalWith(Schema.Number.pipe(Schema.between(1, 65_536)), { default: () => 64 }),
  sampled: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  semantic: Schema.optional(SemanticSettings)
})
export type CacheSettings = typeof CacheSettings.Type
