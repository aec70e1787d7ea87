/** The spend database the config names, migrated before first use. */
import type { SqlClient } from "@effect/sql"
import { Effect, Layer, Schedule } from "effect"
import type { DatabaseSetting } from "../../config/database"
import { SpendStoreError } from "../errors"
import { migrate } from "./migrations"
import { postgresLayer } from "./postgres"
import { sqliteLayer } from "./sqlite"


/**
 * Workers and replicas may start at once: the migrator's lock makes the others wait or
 * skip, but two creating its bookkeeping table together can still collide, so retry.
 */
const migrated = Layer.effectDiscard(
  migrate.pipe(
    Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.jittered, Schedule.upTo("10 seconds"))),
    Effect.mapError((e) => new SpendStoreError({ message: `spend database migration failed: ${e.message}` }))
  )
)

const opened = (error: unknown) =>
  new SpendStoreError({ message: `cannot open the spend database: ${error instanceof Error ? error.message : String(error)}` })

export const databaseLayer = (db: DatabaseSetting): Layer.Layer<SqlClient.SqlClient, SpendStoreError> => {
  const client: Layer.Layer<SqlClient.SqlClient, SpendStoreError> = db.kind === "sqlite"
    ? Layer.mapError(sqliteLayer(db.path), opened)
    : Layer.mapError(postgresLayer(db.url), opened)
  return Layer.provideMerge(migrated, client)
}
