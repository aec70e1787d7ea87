/**
 * What a request says about the cache: `quorum: {cache: {no_cache, no_store}}` in the body,
 * or HTTP's own `Cache-Control: no-cache` / `no-store`. `no_cache`: do not answer from the
 * cache (fetch afresh, and keep the fresh answer); `no_store`: do not keep this answer.
 */
import { Schema } from "effect"

export const CacheDirectives = Schema.Struct({
  no_cache: Schema.optional(Schema.Boolean),
  no_store: Schema.optional(Schema.Boolean)
})
export type CacheDirectives = typeof CacheDirectives.Type

/** The directives of a Cache-Control header, merged with the body's (either one suffices). */
export const withCacheControl = (body: CacheDirectives | undefined, header: string | undefined): CacheDirectives => {
  const tokens = new Set((header ?? "").toLowerCase().split(",").map((t) => t.trim()))
  return {
    no_cache: body?.no_cache === true || tokens.has("no-cache"),
    no_store: body?.no_store === true || tokens.has("no-store")
  }
}
