/** Cached answers in this worker's memory: least recently used out first, bounded in bytes. */
import { Effect, Layer, Option } from "effect"
import { LRUCache } from "lru-cache"
import { answerBytes, type CachedAnswer } from "./answer"
import { CacheStore, type CacheStoreShape } from "./store"

export interface MemoryStoreOptions {
  readonly maxBytes: number
  /** The clock TTLs are read from (tests move it by hand). */
  readonly clock?: { now: () => number }
}

export const memoryStore = (options: MemoryStoreOptions): CacheStoreShape => {
  const lru = new LRUCache<string, CachedAnswer>({
    maxSize: options.maxBytes,
    // An answer larger than a tenth of the cache would push out many others for one hit.
    maxEntrySize: Math.max(1, Math.floor(options.maxBytes / 10)),
    sizeCalculation: answerBytes,
    ...(options.clock !== undefined ? { perf: options.clock, ttlResolution: 0 } : {})
  })
  return {
    get: (key) => Effect.sync(() => Option.fromNullable(lru.get(key))),
    set: (key, answer, ttlMs) => Effect.sync(() => void lru.set(key, answer, { ttl: ttlMs }))
  }
}

export const MemoryCacheStore = (options: MemoryStoreOptions) => Layer.sync(CacheStore, () => memoryStore(options))
