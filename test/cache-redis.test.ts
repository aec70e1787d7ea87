/**
 * The response cache on Redis: an answer kept by one worker is a hit for another (two
 * clients, as two processes would have), kept with Redis's own expiry; a Redis that is
 * down is a miss, never an error. Needs Debian's redis-server (.ci/run installs it).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { Redis } from "ioredis"
import type { CachedAnswer } from "../src/cache/answer"
import { RedisCacheStore, redisStore } from "../src/state/redis-cache"
import { redisLayer, whenReady } from "../src/state/redis"
import { CacheStore } from "../src/cache/store"
import { freePort } from "./support/free-port"
import { redisAvailable, type RunningRedis, startRedis } from "./support/redis"

const answer: CachedAnswer = {
  completion: {
    id: "chatcmpl-1",
    object: "chat.completion",
    created: 1_700_000_000,
    model: "m",
    choices: [{ index: 0, message: { role: "assistant", content: "4", refusal: null }, finish_reason: "stop" }],
    usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 }
  },
  cost_micros: 42,
  deployment: "d",
  stored_at: 1
}

describe.skipIf(!redisAvailable())("the response cache on Redis", () => {
  let redis: RunningRedis
  const clients: Array<Redis> = []
  const client = async (url: string) => {
    const c = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false })
    clients.push(c)
    await whenReady(c)
    return c
  }
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    for (const c of clients) c.disconnect()
    await redis?.stop()
  })

  it("serves an answer kept by one worker to another, under Redis's expiry", async () => {
    const one = await client(redis.url)
    const two = await client(redis.url)
    await Effect.runPromise(redisStore(one).set("k1", answer, 60_000))
    const found = await Effect.runPromise(redisStore(two).get("k1"))
    expect(Option.getOrUndefined(found)).toEqual(answer)
    const ttl = await two.pttl("quorum:cache:k1")
    expect(ttl).toBeGreaterThan(0)
    expect(ttl).toBeLessThanOrEqual(60_000)
    expect(Option.isNone(await Effect.runPromise(redisStore(two).get("absent")))).toBe(true)
  })

  it("treats an entry it cannot read as a miss", async () => {
    const one = await client(redis.url)
    await one.set("quorum:cache:broken", "{not json")
    expect(Option.isNone(await Effect.runPromise(redisStore(one).get("broken")))).toBe(true)
  })

  it("misses, and keeps nothing, while Redis is unreachable", async () => {
    const down = new Redis(`redis://127.0.0.1:${await freePort()}`, { maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null, lazyConnect: true })
    // No server to reach: the client reports it as an event, which a worker logs.
    down.on("error", () => undefined)
    clients.push(down)
    const store = redisStore(down)
    await Effect.runPromise(store.set("k2", answer, 1000))
    expect(Option.isNone(await Effect.runPromise(store.get("k2")))).toBe(true)
  })

  it("opens one connection per worker as a layer, and fails to start on an unreachable Redis without printing its password", async () => {
    const kept = await Effect.runPromise(
      Effect.gen(function*() {
        const store = yield* CacheStore
        yield* store.set("k3", answer, 60_000)
        return yield* store.get("k3")
      }).pipe(Effect.provide(RedisCacheStore.pipe(Layer.provide(redisLayer(redis.url)))))
    )
    expect(Option.isSome(kept)).toBe(true)
    const unreachable = `redis://:hunter2-secret@127.0.0.1:${await freePort()}`
    const failed = await Effect.runPromise(Effect.flip(Effect.scoped(Layer.build(redisLayer(unreachable)))))
    expect(String(failed)).toMatch(/Redis is unreachable/)
    expect(String(failed)).not.toContain("hunter2")
  })
})
