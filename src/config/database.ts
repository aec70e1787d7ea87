/** Where keys, budgets and the ledger are kept: a SQLite file by default, or PostgreSQL (QUORUM_DATABASE_URL). */
import type { Redacted } from "effect"

export type DatabaseSetting =
  | { readonly kind: "sqlite"; readonly path: string }
  | { readonly kind: "postgres"; readonly url: Redacted.Redacted<string> }

export const describeDatabase = (db: DatabaseSetting): string => (db.kind === "sqlite" ? `SQLite ${db.path}` : "PostgreSQL")
