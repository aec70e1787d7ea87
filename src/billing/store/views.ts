/**
 * Ledger rows as the admin API shows them, whichever store read them back: PostgreSQL gives
 * BIGINTs as strings, and flags are 0 or 1 in every store.
 */
import { formatUsd } from "../../domain/money"
import type { AttemptView, RequestView } from "../reports"
import type { AttemptRow, RequestRow } from "./types"

const num = (value: unknown): number => (typeof value === "number" ? value : Number(value))
const numOrNull = (value: unknown): number | null => (value === null || value === undefined ? null : num(value))

export const requestView = (row: RequestRow): RequestView => {
  const cost = num(row.cost_micros)
  return {
    id: row.id,
    object: "request",
    key_id: row.key_id,
    endpoint: row.endpoint,
    model: row.model,
    consensus_id: row.consensus_id,
    status: num(row.status),
    error: row.error,
    stream: num(row.stream) === 1,
    cancelled: num(row.cancelled) === 1,
    attempts: num(row.attempts),
    prompt_tokens: num(row.prompt_tokens),
    completion_tokens: num(row.completion_tokens),
    cost_micros: cost,
    cost_usd: formatUsd(cost),
    latency_ms: num(row.latency_ms),
    started_at: num(row.started_at),
    day: row.day
  }
}

export const attemptView = (row: AttemptRow): AttemptView => {
  const cost = num(row.cost_micros)
  return {
    seq: num(row.seq),
    model: row.model,
    provider: row.provider,
    upstream_model: row.upstream_model,
    status: row.status,
    error_kind: row.error_kind,
    http_status: numOrNull(row.http_status),
    prompt_tokens: num(row.prompt_tokens),
    cached_tokens: num(row.cached_tokens),
    completion_tokens: num(row.completion_tokens),
    estimated: num(row.estimated) === 1,
    cost_micros: cost,
    cost_usd: formatUsd(cost),
    latency_ms: num(row.latency_ms),
    started_at: num(row.started_at)
  }
}
