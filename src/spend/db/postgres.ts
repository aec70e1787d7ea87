/** The shared store, for several replicas: PostgreSQL through @effect/sql-pg. */
import { PgClient } from "@effect/sql-pg"
import type { Redacted } from "effect"

export const postgresLayer = (url: Redacted.Redacted<string>) =>
  PgClient.layer({ url, maxConnections: 10, applicationName: "quorum" })
