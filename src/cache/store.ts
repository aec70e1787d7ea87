/**
 * Where cached answers live. One per worker in memory by default (memory-store.ts); a
 * store shared by replicas (Redis) is one more file behind this interface.
 */
import { Context, type Effect, type Option } from "effect"
import type { CachedAnswer } from "./answer"

export interface CacheStoreShape {
  readonly get: (key: string) => Effect.Effect<Option.Option<CachedAnswer>>
  /** Keeps the answer for `ttlMs`; a store may drop it sooner to stay within its bound. */
  readonly set: (key: string, answer: CachedAnswer, ttlMs: number) => Effect.Effect<void>
}

export class CacheStore extends Context.Tag("quorum/CacheStore")<CacheStore, CacheStoreShape>() {}
