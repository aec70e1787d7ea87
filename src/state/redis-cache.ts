/**
 * Cached answers in Redis, shared by every worker and replica: an answer fetched by one is
 * a hit for all. Entries expire by Redis's own TTL; the bound in bytes is Redis's
 * `maxmemory` with an LRU policy (`allkeys-lru`), set on the server. An unreachable or
 * failing Redis is a miss, and the answer is not kept: the request never waits on it.
 */
import { Effect, Layer, Option, Schema } from "effect"
import type { Redis } from "ioredis"
import { RedisClient } from "./redis"
import { CachedAnswer } from "../cache/answer"
import { CacheStore, type CacheStoreShape } from "../cache/store"

const PREFIX = "quorum:cache:"

const parse = Schema.decodeUnknownOption(Schema.parseJson(CachedAnswer))

export const redisStore = (redis: Redis): CacheStoreShape => ({
  get: (key) =>
    Effect.tryPromise(() => redis.get(PREFIX + key)).pipe(
      Effect.map((text) => (text === null ? Option.none() : parse(text))),
      Effect.orElseSucceed(() => Option.none())
    ),
  set: (key, answer, ttlMs) =>
    Effect.tryPromise(() => redis.set(PREFIX + key, JSON.stringify(answer), "PX", Math.max(1, Math.round(ttlMs)))).pipe(Effect.ignore)
})

export const RedisCacheStore = Layer.effect(CacheStore, Effect.map(RedisClient, redisStore))
