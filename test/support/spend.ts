/** A spend store on a real database (a SQLite file, or a PostgreSQL database) for store-level tests. */
import { Context, Effect, Exit, Layer, Redacted, Scope } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { DatabaseSetting } from "../../src/config/database"
import { databaseLayer } from "../../src/billing/db/database"
import { SpendStore } from "../../src/billing/store"

export const sqliteSetting = (): DatabaseSetting => ({ kind: "sqlite", path: join(mkdtempSync(join(tmpdir(), "quorum-sqlite-")), "quorum.db") })
export const postgresSetting = (url: string): DatabaseSetting => ({ kind: "postgres", url: Redacted.make(url) })

/** An independent store (its own connection or pool), as another worker or replica would have. */
export const openStore = async (db: DatabaseSetting) => {
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(SpendStore.Default.pipe(Layer.provide(databaseLayer(db))), scope))
  return { store: Context.get(context, SpendStore), close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}
