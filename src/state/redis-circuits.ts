/**
 * Circuit states shared by replicas through Redis: a circuit one replica opens is open on
 * every replica (until the same moment), and a probe that closes it closes it everywhere.
 * Each opening is a key with the cooldown as its TTL (read by a replica that starts later)
 * and a message on a channel (seen at once by the running ones). Failures are still
 * counted per replica: what is shared is the verdict. Redis being away never fails a
 * request: the circuits then work per replica, as without Redis.
 */
import { Effect, Layer } from "effect"
import type { Redis } from "ioredis"
import { CircuitSync, type CircuitSyncShape } from "../routing/circuit-sync"
import { RedisClient } from "./redis"

const CHANNEL = "quorum:circuits"
const keyOf = (id: string) => `quorum:circuit:${id}`

interface Change {
  readonly id: string
  /** When the circuit lets a probe through again; 0: closed. */
  readonly until: number
}

const isChange = (value: unknown): value is Change =>
  typeof value === "object" && value !== null && typeof (value as Change).id === "string" && typeof (value as Change).until === "number"

const sync = (redis: Redis, subscriber: Redis): CircuitSyncShape => ({
  opened: (id, until) => {
    const ttl = Math.max(1, Math.round(until - Date.now()))
    void redis.set(keyOf(id), String(until), "PX", ttl).catch(() => undefined)
    void redis.publish(CHANNEL, JSON.stringify({ id, until })).catch(() => undefined)
  },
  closed: (id) => {
    void redis.del(keyOf(id)).catch(() => undefined)
    void redis.publish(CHANNEL, JSON.stringify({ id, until: 0 })).catch(() => undefined)
  },
  follow: (ids, apply) =>
    Effect.promise(async () => {
      subscriber.on("message", (_channel: string, text: string) => {
        try {
          const change: unknown = JSON.parse(text)
          if (isChange(change)) apply(change.id, change.until)
        } catch {
          // Not ours.
        }
      })
      await subscriber.subscribe(CHANNEL).catch(() => undefined)
      // Circuits opened before this replica started.
      const current = ids.length === 0 ? [] : await redis.mget(ids.map(keyOf)).catch(() => [])
      ids.forEach((id, i) => {
        const until = current[i]
        if (until !== null && until !== undefined && Number(until) > Date.now()) apply(id, Number(until))
      })
    })
})

export const RedisCircuitSync = Layer.scoped(
  CircuitSync,
  Effect.gen(function*() {
    const redis = yield* RedisClient
    // A subscribed connection takes no other command: it gets its own.
    const subscriber = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const duplicate = redis.duplicate()
        duplicate.on("error", () => undefined)
        return duplicate
      }),
      (duplicate) => Effect.promise(() => duplicate.quit().catch(() => "closed"))
    )
    return sync(redis, subscriber)
  })
)
