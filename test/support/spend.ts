/** A spend store on a real database (a SQLite file, or a PostgreSQL database) for store-level tests. */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Exit, Layer, Redacted, Scope } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { DatabaseSetting } from "../../src/config/database"
import { databaseLayer } from "../../src/billing/db/database"
import { SqlSpendStore } from "../../src/billing/store/sql"
import { SpendStore } from "../../src/billing/store/store"

export const sqliteSetting = (): DatabaseSetting => ({ kind: "sqlite", path: join(mkdtempSync(join(tmpdir(), "quorum-sqlite-")), "quorum.db") })
export const postgresSetting = (url: string): DatabaseSetting => ({ kind: "postgres", url: Redacted.make(url) })

/**
 * An independent store (its own connection or pool), as another worker or replica would have,
 * and that connection, for tests that look at the tables behind the store's interface.
 */
export const openStore = async (db: DatabaseSetting) => {
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(SqlSpendStore.pipe(Layer.provideMerge(databaseLayer(db))), scope))
  return { store: Context.get(context, SpendStore), sql: Context.get(context, SqlClient.SqlClient), close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}
