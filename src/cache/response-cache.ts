/**
 * The response cache on a request's way: look up before routing, remember after a
 * complete answer. Exact matches by the normalized request; near matches by meaning when
 * the route opts in. The cache never fails a request: a store or embeddings error is a miss.
 */
import { Effect, Option } from "effect"
import type { ChatCompletionRequest } from "../protocol/chat-request"
import type { CachedAnswer } from "./answer"
import type { CacheDirectives } from "./directives"
import type { EmbedderShape } from "./embedder"
import { cacheKey, conversationText, samples, semanticBucket, textOnly } from "./key"
import type { SemanticIndex } from "./semantic-index"
import type { CacheSettings } from "../config/cache"
import type { CacheStoreShape } from "./store"

export interface CacheQuery {
  /** The tenant: a virtual key's id, or one shared scope when requests carry no key. */
  readonly scope: string
  readonly request: ChatCompletionRequest
  readonly directives: CacheDirectives
  /** The route's (or gateway's) cache settings; undefined: the cache is off here. */
  readonly settings: CacheSettings | undefined
}

export type Lookup =
  | { readonly _tag: "Hit"; readonly answer: CachedAnswer; readonly match: "exact" | "semantic"; readonly similarity: number }
  | {
    readonly _tag: "Miss"
    /** Where to keep the answer, or undefined when it must not be kept. */
    readonly keep: Keep | undefined
  }

interface Keep {
  readonly key: string
  readonly ttlMs: number
  readonly semantic: { readonly bucket: string; readonly vector: ReadonlyArray<number> } | undefined
}

export interface Semantic {
  readonly index: SemanticIndex
  readonly embedder: EmbedderShape
}

const MISS: Lookup = { _tag: "Miss", keep: undefined }

/** Whether the request's answer may be cached at all. */
const cacheable = (query: CacheQuery): query is CacheQuery & { settings: CacheSettings } =>
  query.settings !== undefined && (query.settings.sampled || !samples(query.request))

const embedding = (semantic: Semantic, model: string, request: ChatCompletionRequest) =>
  semantic.embedder.embed(model, conversationText(request)).pipe(Effect.option)

export const lookup: (store: CacheStoreShape, semantic: Semantic | undefined, query: CacheQuery) => Effect.Effect<Lookup> = Effect.fnUntraced(function*(
  store: CacheStoreShape,
  semantic: Semantic | undefined,
  query: CacheQuery
) {
  if (!cacheable(query)) return MISS
  const { settings, request, scope, directives } = query
  const key = cacheKey(scope, request)
  const read = directives.no_cache !== true
  if (read) {
    const exact = yield* store.get(key).pipe(Effect.orElseSucceed(() => Option.none()))
    if (Option.isSome(exact)) return { _tag: "Hit", answer: exact.value, match: "exact", similarity: 1 }
  }
  const bySense = settings.semantic !== undefined && semantic !== undefined && textOnly(request) ? settings.semantic : undefined
  let vector: ReadonlyArray<number> | undefined
  const bucket = bySense === undefined ? "" : semanticBucket(scope, request)
  if (bySense !== undefined && semantic !== undefined) {
    vector = Option.getOrUndefined(yield* embedding(semantic, bySense.model, request))
    const near = vector === undefined || !read ? undefined : semantic.index.nearest(bucket, vector, bySense.threshold)
    if (near !== undefined) {
      const answer = yield* store.get(near.key).pipe(Effect.orElseSucceed(() => Option.none()))
      if (Option.isSome(answer)) return { _tag: "Hit", answer: answer.value, match: "semantic", similarity: near.similarity }
    }
  }
  if (directives.no_store === true) return MISS
  return { _tag: "Miss", keep: { key, ttlMs: settings.ttl_s * 1000, semantic: vector === undefined ? undefined : { bucket, vector } } }
})

/** Keeps a complete answer where the lookup said it belongs. */
export const remember: (store: CacheStoreShape, semantic: Semantic | undefined, miss: Lookup, answer: CachedAnswer) => Effect.Effect<void> = Effect.fnUntraced(function*(
  store: CacheStoreShape,
  semantic: Semantic | undefined,
  miss: Lookup,
  answer: CachedAnswer
) {
  if (miss._tag !== "Miss" || miss.keep === undefined) return
  const { key, ttlMs } = miss.keep
  yield* store.set(key, answer, ttlMs).pipe(Effect.ignore)
  if (miss.keep.semantic !== undefined && semantic !== undefined) semantic.index.add(miss.keep.semantic.bucket, miss.keep.semantic.vector, key, ttlMs)
})
