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
import { dayOf } from "../../src/billing/keys"
import type { LedgerEntry } from "../../src/billing/store/types"
import { newId } from "../../src/domain/ids"

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

/** The ledger's rows of one plain answered call without a key: a request row and its one attempt, nothing to settle. */
export const answeredEntry = (): LedgerEntry => {
  const id = newId("req")
  const now = Date.now()
  const common = { key_id: null, consensus_id: null, model: "bench0", prompt_tokens: 10, completion_tokens: 5, cost_micros: 98, started_at: now, day: dayOf(now) }
  return {
    costMicros: 98,
    request: { ...common, id, endpoint: "/v1/chat/completions", status: 200, error: null, stream: 0, cancelled: 0, attempts: 1, latency_ms: 1.2 },
    attempts: [{
      ...common, request_id: id, seq: 0, provider: "vllm", upstream_model: "m", status: "ok", error_kind: null, http_status: null,
      cached_tokens: 0, estimated: 0, latency_ms: 1
    }],
    settle: undefined
  }
}
