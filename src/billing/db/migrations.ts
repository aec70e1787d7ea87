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

/**
 * Admission on PostgreSQL in one round trip: the key's row locked, its rate buckets,
 * model list and budget checked, the reservation inserted, as one server-side function
 * called in one statement (its own transaction), instead of BEGIN, UPDATE, INSERT and
 * COMMIT from the gateway. The exactness argument is the one of the two-statement
 * transaction: a VOLATILE plpgsql function takes a fresh snapshot for every statement
 * under READ COMMITTED, so the sums of spend and reservations, read after the row lock is
 * held, see every admission that held it before. Nothing is written unless the request is
 * admitted (a refused request draws nothing from the buckets, as the rolled-back
 * transaction did). SQLite keeps its in-process transaction.
 */
const admitFunction = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.onDialectOrElse({
    pg: () => sql.unsafe(ADMIT_FUNCTION),
    orElse: () => Effect.void
  })
})

const ADMIT_FUNCTION = `
CREATE OR REPLACE FUNCTION quorum_admit(
  p_hash TEXT, p_now BIGINT, p_models JSONB, p_charge DOUBLE PRECISION, p_micros JSONB,
  p_day TEXT, p_month TEXT, p_ttl BIGINT, p_reservation TEXT
) RETURNS JSONB LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  k quorum_keys%ROWTYPE;
  req DOUBLE PRECISION;
  tok DOUBLE PRECISION;
  v_period TEXT;
  v_spent BIGINT := 0;
  v_reserved BIGINT := 0;
  v_option INT := -1;
  v_micros BIGINT;
  i INT;
BEGIN
  SELECT * INTO k FROM quorum_keys WHERE hash = p_hash FOR UPDATE;
  IF NOT FOUND THEN RETURN jsonb_build_object('outcome', 'unknown'); END IF;
  IF k.revoked_at IS NOT NULL THEN RETURN jsonb_build_object('outcome', 'revoked', 'prefix', k.prefix); END IF;
  IF k.models IS NOT NULL AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(p_models) m WHERE NOT (k.models::jsonb ? m)) THEN
    RETURN jsonb_build_object('outcome', 'model_not_allowed', 'key_id', k.id, 'models', k.models::jsonb);
  END IF;
  IF (k.budget_micros IS NOT NULL OR k.tpm IS NOT NULL) AND p_micros IS NULL THEN
    RETURN jsonb_build_object('outcome', 'needs_cost');
  END IF;
  req := CASE WHEN k.rpm IS NULL THEN NULL
    WHEN k.req_level IS NULL OR k.req_level + (p_now - k.req_at) * k.rpm / 60000.0 > k.rpm THEN k.rpm - 1
    ELSE k.req_level + (p_now - k.req_at) * k.rpm / 60000.0 - 1 END;
  tok := CASE WHEN k.tpm IS NULL THEN NULL
    WHEN k.tok_level IS NULL OR k.tok_level + (p_now - k.tok_at) * k.tpm / 60000.0 > k.tpm THEN k.tpm - p_charge
    ELSE k.tok_level + (p_now - k.tok_at) * k.tpm / 60000.0 - p_charge END;
  IF req < 0 THEN RETURN jsonb_build_object('outcome', 'rate_requests', 'key_id', k.id, 'rpm', k.rpm, 'level', req); END IF;
  IF tok < 0 THEN RETURN jsonb_build_object('outcome', 'rate_tokens', 'key_id', k.id, 'tpm', k.tpm, 'level', tok); END IF;
  v_period := CASE WHEN k.budget_period = 'day' THEN p_day ELSE p_month END;
  IF k.budget_micros IS NOT NULL AND p_micros IS NOT NULL AND jsonb_array_length(p_micros) > 0 THEN
    SELECT COALESCE(SUM(spent_micros), 0) INTO v_spent FROM quorum_key_spend WHERE key_id = k.id AND period = v_period;
    SELECT COALESCE(SUM(amount_micros), 0) INTO v_reserved FROM quorum_reservations WHERE key_id = k.id AND period = v_period AND expires_at > p_now;
    FOR i IN 0 .. jsonb_array_length(p_micros) - 1 LOOP
      IF v_spent + v_reserved + (p_micros ->> i)::BIGINT <= k.budget_micros THEN
        v_option := i;
        EXIT;
      END IF;
    END LOOP;
    IF v_option < 0 THEN
      RETURN jsonb_build_object('outcome', 'quota', 'key_id', k.id, 'budget', k.budget_micros, 'budget_period', k.budget_period, 'spent', v_spent, 'reserved', v_reserved);
    END IF;
    v_micros := (p_micros ->> v_option)::BIGINT;
    INSERT INTO quorum_reservations (id, key_id, period, amount_micros, expires_at) VALUES (p_reservation, k.id, v_period, v_micros, p_now + p_ttl);
  END IF;
  UPDATE quorum_keys SET last_used_at = p_now, req_level = req, req_at = p_now, tok_level = tok, tok_at = p_now WHERE id = k.id;
  RETURN jsonb_build_object('outcome', 'ok', 'key_id', k.id, 'period', v_period, 'option', GREATEST(v_option, 0),
    'reserved', v_micros, 'budget', k.budget_micros, 'tpm', k.tpm);
END
$$`

/**
 * A running reserved total per key and period, next to what the period spent, so that
 * admission reads one row under the key's lock instead of summing every reservation in
 * flight (at 2,000 admissions/s the sum was most of the function's time). Whoever deletes
 * a reservation (settlement, the expiry sweep) subtracts it, in the same transaction, so
 * the total is every reservation not yet deleted: expired ones included, until swept.
 * Admission therefore checks the total first, which can only overstate what is held, and
 * only when that does not fit sums the live reservations as before, so a request is
 * admitted exactly when it was before. The total starts as the sum of the rows there.
 */
const reservedTotals = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE quorum_key_spend ADD COLUMN reserved_micros BIGINT NOT NULL DEFAULT 0`
  yield* sql`INSERT INTO quorum_key_spend (key_id, period, spent_micros, reserved_micros)
    SELECT key_id, period, 0, SUM(amount_micros) FROM quorum_reservations GROUP BY key_id, period
    ON CONFLICT (key_id, period) DO UPDATE SET reserved_micros = excluded.reserved_micros`
  yield* sql.onDialectOrElse({
    pg: () => sql.unsafe(ADMIT_FUNCTION_TOTALS),
    orElse: () => Effect.void
  })
})

/** quorum_admit as in 0004, but reading the key's totals row; the sum is the fallback when the total does not fit. */
const ADMIT_FUNCTION_TOTALS = `
CREATE OR REPLACE FUNCTION quorum_admit(
  p_hash TEXT, p_now BIGINT, p_models JSONB, p_charge DOUBLE PRECISION, p_micros JSONB,
  p_day TEXT, p_month TEXT, p_ttl BIGINT, p_reservation TEXT
) RETURNS JSONB LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  k quorum_keys%ROWTYPE;
  req DOUBLE PRECISION;
  tok DOUBLE PRECISION;
  v_period TEXT;
  v_spent BIGINT := 0;
  v_reserved BIGINT := 0;
  v_option INT := -1;
  v_micros BIGINT;
  v_count INT;
  i INT;
BEGIN
  SELECT * INTO k FROM quorum_keys WHERE hash = p_hash FOR UPDATE;
  IF NOT FOUND THEN RETURN jsonb_build_object('outcome', 'unknown'); END IF;
  IF k.revoked_at IS NOT NULL THEN RETURN jsonb_build_object('outcome', 'revoked', 'prefix', k.prefix); END IF;
  IF k.models IS NOT NULL AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(p_models) m WHERE NOT (k.models::jsonb ? m)) THEN
    RETURN jsonb_build_object('outcome', 'model_not_allowed', 'key_id', k.id, 'models', k.models::jsonb);
  END IF;
  IF (k.budget_micros IS NOT NULL OR k.tpm IS NOT NULL) AND p_micros IS NULL THEN
    RETURN jsonb_build_object('outcome', 'needs_cost');
  END IF;
  req := CASE WHEN k.rpm IS NULL THEN NULL
    WHEN k.req_level IS NULL OR k.req_level + (p_now - k.req_at) * k.rpm / 60000.0 > k.rpm THEN k.rpm - 1
    ELSE k.req_level + (p_now - k.req_at) * k.rpm / 60000.0 - 1 END;
  tok := CASE WHEN k.tpm IS NULL THEN NULL
    WHEN k.tok_level IS NULL OR k.tok_level + (p_now - k.tok_at) * k.tpm / 60000.0 > k.tpm THEN k.tpm - p_charge
    ELSE k.tok_level + (p_now - k.tok_at) * k.tpm / 60000.0 - p_charge END;
  IF req < 0 THEN RETURN jsonb_build_object('outcome', 'rate_requests', 'key_id', k.id, 'rpm', k.rpm, 'level', req); END IF;
  IF tok < 0 THEN RETURN jsonb_build_object('outcome', 'rate_tokens', 'key_id', k.id, 'tpm', k.tpm, 'level', tok); END IF;
  v_period := CASE WHEN k.budget_period = 'day' THEN p_day ELSE p_month END;
  IF k.budget_micros IS NOT NULL AND p_micros IS NOT NULL AND jsonb_array_length(p_micros) > 0 THEN
    v_count := jsonb_array_length(p_micros);
    -- Settlement and the sweep change this row without the key's lock: lock it too (always after the key's row).
    SELECT spent_micros, reserved_micros INTO v_spent, v_reserved FROM quorum_key_spend WHERE key_id = k.id AND period = v_period FOR UPDATE;
    IF NOT FOUND THEN
      INSERT INTO quorum_key_spend (key_id, period, spent_micros, reserved_micros) VALUES (k.id, v_period, 0, 0) ON CONFLICT (key_id, period) DO NOTHING;
      SELECT spent_micros, reserved_micros INTO v_spent, v_reserved FROM quorum_key_spend WHERE key_id = k.id AND period = v_period FOR UPDATE;
    END IF;
    FOR i IN 0 .. v_count - 1 LOOP
      IF v_spent + v_reserved + (p_micros ->> i)::BIGINT <= k.budget_micros THEN v_option := i; EXIT; END IF;
    END LOOP;
    IF v_option < 0 THEN
      -- The total counts expired reservations until they are swept: the live ones decide.
      SELECT COALESCE(SUM(amount_micros), 0) INTO v_reserved FROM quorum_reservations WHERE key_id = k.id AND period = v_period AND expires_at > p_now;
      FOR i IN 0 .. v_count - 1 LOOP
        IF v_spent + v_reserved + (p_micros ->> i)::BIGINT <= k.budget_micros THEN v_option := i; EXIT; END IF;
      END LOOP;
    END IF;
    IF v_option < 0 THEN
      RETURN jsonb_build_object('outcome', 'quota', 'key_id', k.id, 'budget', k.budget_micros, 'budget_period', k.budget_period, 'spent', v_spent, 'reserved', v_reserved);
    END IF;
    v_micros := (p_micros ->> v_option)::BIGINT;
    INSERT INTO quorum_reservations (id, key_id, period, amount_micros, expires_at) VALUES (p_reservation, k.id, v_period, v_micros, p_now + p_ttl);
    UPDATE quorum_key_spend SET reserved_micros = reserved_micros + v_micros WHERE key_id = k.id AND period = v_period;
  END IF;
  UPDATE quorum_keys SET last_used_at = p_now, req_level = req, req_at = p_now, tok_level = tok, tok_at = p_now WHERE id = k.id;
  RETURN jsonb_build_object('outcome', 'ok', 'key_id', k.id, 'period', v_period, 'option', GREATEST(v_option, 0),
    'reserved', v_micros, 'budget', k.budget_micros, 'tpm', k.tpm);
END
$$`

/**
 * Each reservation names the process that holds it (its owner) and when it was made, and
 * each process keeps a lease in quorum_owners, renewed every second. When a process dies
 * (kill -9, a lost machine), the reservations of the requests it was serving, or had
 * answered but not yet written to the ledger, are found within seconds by the lease
 * lapsing, and are charged: their reserved worst case goes into the ledger and the key's
 * spend (see SpendStore.reconcile), so a key's spend never undercounts what was served.
 */
const reservationOwners = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE quorum_reservations ADD COLUMN owner TEXT`
  yield* sql`ALTER TABLE quorum_reservations ADD COLUMN created_at BIGINT`
  yield* sql`CREATE INDEX quorum_reservations_owner ON quorum_reservations (owner)`
  yield* sql`CREATE TABLE quorum_owners (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL
  )`
  yield* sql.onDialectOrElse({
    pg: () =>
      Effect.zipRight(
        sql`DROP FUNCTION quorum_admit(TEXT, BIGINT, JSONB, DOUBLE PRECISION, JSONB, TEXT, TEXT, BIGINT, TEXT)`,
        sql.unsafe(ADMIT_FUNCTION_OWNED)
      ),
    orElse: () => Effect.void
  })
})

/** quorum_admit as in 0005, with the reservation's owner and time of creation. */
const ADMIT_FUNCTION_OWNED = ADMIT_FUNCTION_TOTALS
  .replace("p_day TEXT, p_month TEXT, p_ttl BIGINT, p_reservation TEXT\n", "p_day TEXT, p_month TEXT, p_ttl BIGINT, p_reservation TEXT, p_owner TEXT\n")
  .replace(
    "INSERT INTO quorum_reservations (id, key_id, period, amount_micros, expires_at) VALUES (p_reservation, k.id, v_period, v_micros, p_now + p_ttl);",
    "INSERT INTO quorum_reservations (id, key_id, period, amount_micros, expires_at, owner, created_at) VALUES (p_reservation, k.id, v_period, v_micros, p_now + p_ttl, p_owner, p_now);"
  )

/**
 * Learned routes' beliefs (routing/learned/store.ts), shared by replicas: per route and
 * target, the Beta posterior of its quality and running means of its cost and latency;
 * the labels feedback gave routed answers (one per answer); and the watermark up to which
 * ledger rows were folded into the beliefs, moved by compare-and-set so that two replicas
 * never fold the same rows. Rows are folded in the order they ended (started_at +
 * latency_ms, then id), indexed: a request's row is written when it ends, so that order
 * follows the ledger's writes, where the order they started would not (a long stream
 * started before a short call is written after it). The watermark starts now: history
 * from before the upgrade is not folded.
 */
const routeBeliefs = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE quorum_route_beliefs (
    route TEXT NOT NULL,
    target TEXT NOT NULL,
    alpha DOUBLE PRECISION NOT NULL,
    beta DOUBLE PRECISION NOT NULL,
    cost_usd DOUBLE PRECISION,
    latency_ms DOUBLE PRECISION,
    calls BIGINT NOT NULL,
    feedback BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (route, target)
  )`
  yield* sql`CREATE TABLE quorum_route_feedback (
    request_id TEXT PRIMARY KEY,
    route TEXT NOT NULL,
    target TEXT NOT NULL,
    quality DOUBLE PRECISION NOT NULL,
    created_at BIGINT NOT NULL
  )`
  yield* sql`CREATE TABLE quorum_route_fold (
    id TEXT PRIMARY KEY,
    ended_at DOUBLE PRECISION NOT NULL,
    request_id TEXT NOT NULL,
    folded BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
  )`
  const now = Date.now()
  yield* sql`INSERT INTO quorum_route_fold (id, ended_at, request_id, folded, updated_at) VALUES ('ledger', ${now}, '', 0, ${now})`
  yield* sql`CREATE INDEX quorum_requests_ended ON quorum_requests ((started_at + latency_ms), id)`
})

/**
 * A key's tags (what routing rules match on) and content policies (names from the
 * config's `policies:`), each a JSON array of strings, null for none: read with the
 * key's other facts by its hash, before the request's policies and routing run.
 */
const keyTagsAndPolicies = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE quorum_keys ADD COLUMN tags TEXT`
  yield* sql`ALTER TABLE quorum_keys ADD COLUMN policies TEXT`
})

export const migrate = Migrator.make({})({
  loader: Migrator.fromRecord({
    "0001_spend": initial,
    "0002_requests_by_time": requestsByTime,
    "0003_consensus_outcomes": consensusOutcomes,
    "0004_admit_function": admitFunction,
    "0005_reserved_totals": reservedTotals,
    "0006_reservation_owners": reservationOwners,
    "0007_route_beliefs": routeBeliefs,
    "0008_key_tags_and_policies": keyTagsAndPolicies
  }),
  table: "quorum_migrations"
})
