/**
 * The spend schema, one migration list for SQLite and PostgreSQL: only types and
 * statements both understand (BIGINT, DOUBLE PRECISION, TEXT; INSERT … ON CONFLICT).
 * Times are epoch milliseconds and money is integer micro-dollars; `day` is the UTC
 * date, stored so that reports group the same way on both databases.
 */
import * as Migrator from "@effect/sql/Migrator"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

const initial = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE quorum_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    models TEXT,
    budget_micros BIGINT,
    budget_period TEXT NOT NULL,
    rpm BIGINT,
    tpm BIGINT,
    req_level DOUBLE PRECISION,
    req_at BIGINT,
    tok_level DOUBLE PRECISION,
    tok_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    revoked_at BIGINT,
    last_used_at BIGINT
  )`
  yield* sql`CREATE TABLE quorum_key_spend (
    key_id TEXT NOT NULL,
    period TEXT NOT NULL,
    spent_micros BIGINT NOT NULL,
    PRIMARY KEY (key_id, period)
  )`
  yield* sql`CREATE TABLE quorum_reservations (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    period TEXT NOT NULL,
    amount_micros BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
  )`
  yield* sql`CREATE INDEX quorum_reservations_key ON quorum_reservations (key_id, period)`
  yield* sql`CREATE TABLE quorum_requests (
    id TEXT PRIMARY KEY,
    key_id TEXT,
    endpoint TEXT NOT NULL,
    model TEXT,
    consensus_id TEXT,
    status BIGINT NOT NULL,
    error TEXT,
    stream BIGINT NOT NULL,
    cancelled BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cost_micros BIGINT NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    started_at BIGINT NOT NULL,
    day TEXT NOT NULL
  )`
  yield* sql`CREATE INDEX quorum_requests_key_day ON quorum_requests (key_id, day)`
  yield* sql`CREATE TABLE quorum_attempts (
    request_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    key_id TEXT,
    consensus_id TEXT,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    upstream_model TEXT NOT NULL,
    status TEXT NOT NULL,
    error_kind TEXT,
    http_status BIGINT,
    prompt_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    estimated BIGINT NOT NULL,
    cost_micros BIGINT NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    started_at BIGINT NOT NULL,
    day TEXT NOT NULL,
    PRIMARY KEY (request_id, seq)
  )`
  yield* sql`CREATE INDEX quorum_attempts_day ON quorum_attempts (day)`
})

/**
 * GET /admin/requests reads newest first, with or without a key: both orders by index,
 * so that a page costs its own rows and not a scan of the ledger.
 */
const requestsByTime = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE INDEX quorum_requests_started ON quorum_requests (started_at, id)`
  yield* sql`CREATE INDEX quorum_requests_key_started ON quorum_requests (key_id, started_at, id)`
})

/**
 * Consensus outcomes, for feedback and learning: each request's task, key and returned
 * group, each candidate's model and normalized answer (the key of the group it voted with,
 * null when it abstained), the label once one is given, and each task's learned policy
 * (shared by replicas, kept across restarts).
 */
const consensusOutcomes = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE quorum_consensus (
    id TEXT PRIMARY KEY,
    key_id TEXT,
    task TEXT NOT NULL,
    answer_group TEXT,
    created_at BIGINT NOT NULL,
    labelled_at BIGINT,
    label TEXT,
    truth TEXT
  )`
  yield* sql`CREATE INDEX quorum_consensus_task ON quorum_consensus (task, labelled_at)`
  yield* sql`CREATE INDEX quorum_consensus_created ON quorum_consensus (created_at)`
  yield* sql`CREATE TABLE quorum_consensus_candidates (
    consensus_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    kind TEXT,
    answer TEXT,
    group_key TEXT,
    latency_ms DOUBLE PRECISION,
    cost_micros BIGINT NOT NULL,
    PRIMARY KEY (consensus_id, seq)
  )`
  yield* sql`CREATE TABLE quorum_consensus_policies (
    task TEXT PRIMARY KEY,
    labels BIGINT NOT NULL,
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL
  )`
})

export const migrate = Migrator.make({})({
  loader: Migrator.fromRecord({ "0001_spend": initial, "0002_requests_by_time": requestsByTime, "0003_consensus_outcomes": consensusOutcomes }),
  table: "quorum_migrations"
})
