/**
 * The Redis connection replicas share state through (`redis_url`): one client per worker,
 * opened with the worker and closed with it. Errors say what failed, never the URL, which
 * may carry a password.
 */
import { Context, Effect, Layer } from "effect"
import { Redis } from "ioredis"

export class RedisClient extends Context.Tag("quorum/RedisClient")<RedisClient, Redis>() {}

/** Resolves when the client can take commands; rejects with the first connection error. */
export const whenReady = (client: Redis): Promise<void> =>
  client.status === "ready"
    ? Promise.resolve()
    : new Promise((resolve, reject) => {
      client.once("ready", () => resolve())
      client.once("error", (error: Error) => reject(new Error(`Redis is unreachable: ${error.message}`)))
    })

export const redisLayer = (url: string) =>
  Layer.scoped(
    RedisClient,
    Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const client = new Redis(url, {
            // Commands fail fast while Redis is away rather than queue without bound: callers fall back.
            maxRetriesPerRequest: 1,
            enableOfflineQueue: false,
            connectionName: "quorum"
          })
          // Later errors are reconnections, which the client handles; callers see a failed command.
          client.on("error", () => undefined)
          // The worker starts on a Redis that answers, so its first requests share state too.
          await whenReady(client).catch((error: unknown) => {
            client.disconnect()
            throw error
          })
          return client
        },
        catch: (error) => error as Error
      }),
      (client) => Effect.promise(() => client.quit().catch(() => "closed"))
    )
  )
