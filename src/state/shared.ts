/**
 * What replicas share through Redis (QUORUM_REDIS_URL): circuit verdicts and the response
 * cache. Loaded only when configured, so a gateway without Redis never loads its client.
 */
import { Layer } from "effect"
import { RedisCacheStore } from "./redis-cache"
import { RedisCircuitSync } from "./redis-circuits"
import { SharedStateError } from "./errors"
import { redisLayer } from "./redis"

export const SharedStateLive = (url: string) =>
  Layer.mergeAll(RedisCircuitSync, RedisCacheStore).pipe(
    Layer.provide(redisLayer(url)),
    Layer.mapError((error) => new SharedStateError({ message: error.message }))
  )
