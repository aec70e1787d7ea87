/**
 * What goes into and comes out of a spend store, whichever one it is: admission's input
 * and answer, the ledger's rows (as SQL stores them, so a store can write them as they
 * are), and the report query. Kept apart from the Tag so that implementations and
 * consumers share them without importing each other.
 */
import type { SpendReport } from "../reports"

/** One way a request could run (a consensus fan-out offers several sizes), and its worst case. */
export interface CostOption {
  readonly micros: number
  /** Prompt and output tokens, for the token rate limit. */
  readonly tokens: number
}

export interface AdmitInput {
  /** The SHA-256 of the key's secret (hashKey), as the key's facts carry it. */
  readonly hash: string
  /** Every model the request may call, as the client names them. */
  readonly models: ReadonlyArray<string>
  /**
   * Most preferred first; undefined when the caller learnt that the key needs none (no
   * budget, no token limit) and so skipped tokenizing the prompt. A store that finds the
   * key needs them after all fails with CostsNeeded, having changed nothing.
   */
  readonly options: ReadonlyArray<CostOption> | undefined
  readonly ttlMs: number
  readonly now: number
}

export interface Admission {
  readonly keyId: string
  /** The budget period the request is charged to ("2026-11-24" or "2026-11"). */
  readonly period: string
  /** The option admitted (an index into `options`, 0 when no option was needed). */
  readonly option: number
  /** Set when the key has a budget. */
  readonly reservation: { readonly id: string; readonly period: string; readonly micros: number } | undefined
  /** Tokens drawn from the key's token bucket, refunded down to what was used. */
  readonly tokensCharged: number
}

export type RequestRow = {
  readonly id: string
  readonly key_id: string | null
  readonly endpoint: string
  readonly model: string | null
  readonly consensus_id: string | null
  readonly status: number
  readonly error: string | null
  readonly stream: number
  readonly cancelled: number
  readonly attempts: number
  readonly prompt_tokens: number
  readonly completion_tokens: number
  readonly cost_micros: number
  readonly latency_ms: number
  readonly started_at: number
  readonly day: string
}

export type AttemptRow = {
  readonly request_id: string
  readonly seq: number
  readonly key_id: string | null
  readonly consensus_id: string | null
  readonly model: string
  readonly provider: string
  readonly upstream_model: string
  readonly status: "ok" | "error" | "cancelled"
  readonly error_kind: string | null
  readonly http_status: number | null
  readonly prompt_tokens: number
  readonly cached_tokens: number
  readonly completion_tokens: number
  readonly estimated: number
  readonly cost_micros: number
  readonly latency_ms: number
  readonly started_at: number
  readonly day: string
}

/** A finished request: its ledger rows (unless the ledger is off) and, for a key, what to settle. */
export interface LedgerEntry {
  readonly request: RequestRow | undefined
  readonly attempts: ReadonlyArray<AttemptRow>
  readonly costMicros: number
  readonly settle: {
    readonly keyId: string
    readonly period: string
    readonly reservation: Admission["reservation"]
    readonly tokenRefund: number
  } | undefined
}

export const REPORT_DIMENSIONS = ["key", "model", "provider", "day"] as const
export type ReportDimension = typeof REPORT_DIMENSIONS[number]

export interface ReportQuery {
  readonly groupBy: ReadonlyArray<ReportDimension>
  readonly from: string | undefined
  readonly to: string | undefined
  readonly keyId: string | undefined
}

/** A report's groups and its total; the admin API adds the query it answers. */
export type SpendReportData = Pick<typeof SpendReport.Type, "data" | "total">

/** Where a request falls in the newest-first order (RequestQuery's `after`). */
export interface RequestPosition {
  readonly startedAt: number
  readonly id: string
}
