/**
 * What the admin API shows of the ledger: spend reports, and requests with their
 * upstream attempts. Schemas, because they are wire types (the OpenAPI document
 * describes them); the store builds them from its rows.
 */
import { Schema } from "effect"

/** USD as a decimal string of whole micro-dollars ("0.000040"), as in x-quorum-cost-usd: never shown as 4e-05. */
export const UsdAmount = Schema.String.pipe(Schema.pattern(/^-?\d+\.\d{6}$/))

/**
 * How the requests of a report group were answered. `by_status` has every HTTP status;
 * the four counts sort them for an operator and add up to `requests`:
 * refused (401, 403 or 429 before any upstream call: no or a bad key, a model the key may
 * not use, the key's rate limit or budget), failed (any other error, upstream 429s
 * included, and 0: a request whose gateway process stopped before writing it to the
 * ledger, charged the worst case it reserved), cancelled (499, the client left),
 * succeeded (everything else).
 */
export const StatusCounts = Schema.Struct({
  requests: Schema.Number,
  succeeded: Schema.Number,
  refused: Schema.Number,
  failed: Schema.Number,
  cancelled: Schema.Number,
  by_status: Schema.Record({ key: Schema.String, value: Schema.Number })
})
export type StatusCounts = typeof StatusCounts.Type

const Money = {
  attempts: Schema.Number,
  prompt_tokens: Schema.Number,
  completion_tokens: Schema.Number,
  cost_micros: Schema.Number,
  cost_usd: UsdAmount
}

export const SpendReportRow = Schema.Struct({
  key: Schema.optional(Schema.NullOr(Schema.String)),
  key_name: Schema.optional(Schema.NullOr(Schema.String)),
  model: Schema.optional(Schema.NullOr(Schema.String)),
  provider: Schema.optional(Schema.NullOr(Schema.String)),
  day: Schema.optional(Schema.NullOr(Schema.String)),
  ...StatusCounts.fields,
  ...Money
})
export type SpendReportRow = typeof SpendReportRow.Type

export const SpendReport = Schema.Struct({
  object: Schema.Literal("spend_report"),
  group_by: Schema.Array(Schema.Literal("key", "model", "provider", "day")),
  from: Schema.NullOr(Schema.String),
  to: Schema.NullOr(Schema.String),
  data: Schema.Array(SpendReportRow),
  total: Schema.Struct({ ...StatusCounts.fields, ...Money })
})

export const AttemptView = Schema.Struct({
  seq: Schema.Number,
  model: Schema.String,
  provider: Schema.String,
  upstream_model: Schema.String,
  status: Schema.Literal("ok", "error", "cancelled"),
  error_kind: Schema.NullOr(Schema.String),
  http_status: Schema.NullOr(Schema.Number),
  prompt_tokens: Schema.Number,
  cached_tokens: Schema.Number,
  completion_tokens: Schema.Number,
  estimated: Schema.Boolean,
  cost_micros: Schema.Number,
  cost_usd: UsdAmount,
  latency_ms: Schema.Number,
  started_at: Schema.Number
})
export type AttemptView = typeof AttemptView.Type

/** A client request as the ledger holds it; `id` is the `x-request-id` it was answered with. */
export const RequestView = Schema.Struct({
  id: Schema.String,
  object: Schema.Literal("request"),
  key_id: Schema.NullOr(Schema.String),
  endpoint: Schema.String,
  model: Schema.NullOr(Schema.String),
  consensus_id: Schema.NullOr(Schema.String),
  status: Schema.Number,
  error: Schema.NullOr(Schema.String),
  stream: Schema.Boolean,
  cancelled: Schema.Boolean,
  attempts: Schema.Number,
  prompt_tokens: Schema.Number,
  completion_tokens: Schema.Number,
  cost_micros: Schema.Number,
  cost_usd: UsdAmount,
  latency_ms: Schema.Number,
  started_at: Schema.Number,
  day: Schema.String
})
export type RequestView = typeof RequestView.Type

export const RequestDetail = Schema.Struct({
  ...RequestView.fields,
  upstream_attempts: Schema.Array(AttemptView)
})
export type RequestDetail = typeof RequestDetail.Type

export const RequestPage = Schema.Struct({
  object: Schema.Literal("list"),
  data: Schema.Array(RequestView),
  has_more: Schema.Boolean,
  /** The `after` for the next page: the last request's id, null on the last page. */
  next_after: Schema.NullOr(Schema.String)
})
export type RequestPage = typeof RequestPage.Type

/** GET /admin/requests: every filter optional; times are epoch ms, `to` exclusive. */
export interface RequestQuery {
  readonly keyId: string | undefined
  readonly model: string | undefined
  /** A status (min = max) or a class (400..499). */
  readonly status: { readonly min: number; readonly max: number } | undefined
  readonly from: number | undefined
  readonly to: number | undefined
  /** Requests strictly older than this one (newest first, ties broken by id). */
  readonly after: { readonly startedAt: number; readonly id: string } | undefined
  readonly limit: number
}

const REFUSALS = new Set([401, 403, 429])

/** Folds (status, whether an upstream was called, count) into the counts above. */
export const countStatuses = (rows: ReadonlyArray<{ status: number; upstream: boolean; requests: number }>): StatusCounts => {
  const counts = { requests: 0, succeeded: 0, refused: 0, failed: 0, cancelled: 0, by_status: {} as Record<string, number> }
  for (const { requests, status, upstream } of rows) {
    counts.requests += requests
    counts.by_status[String(status)] = (counts.by_status[String(status)] ?? 0) + requests
    if (status === 499) counts.cancelled += requests
    else if (!upstream && REFUSALS.has(status)) counts.refused += requests
    else if (status >= 400 || status === 0) counts.failed += requests
    else counts.succeeded += requests
  }
  return counts
}
