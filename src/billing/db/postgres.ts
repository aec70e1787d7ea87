/**
 * The shared store, for several replicas: PostgreSQL through @effect/sql-pg, imported
 * only when the config names PostgreSQL (the driver is ~40 MB of a process's memory that
 * a gateway on SQLite never uses).
 */
import { Effect, Layer, type Redacted } from "effect"

export const postgresLayer = (url: Redacted.Redacted<string>) =>
  Layer.unwrapEffect(
    Effect.promise(() => import("@effect/sql-pg")).pipe(
      Effect.map(({ PgClient }) => PgClient.layer({ url, maxConnections: 10, applicationName: "quorum" }))
    )
  )
