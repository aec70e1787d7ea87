/**
 * The spend store as an interface, so that where spend state lives is a choice made where
 * layers are composed: SQL (SQLite or PostgreSQL, sql.ts) for a gateway, memory (memory.ts)
 * for a single process without a database and for fast tests. Everything that admits,
 * settles or reports asks for the `SpendStore` Tag and never learns which one it has.
 *
 * What every implementation promises, because admission and billing rely on it:
 * - a key's secret is shown once, by createKey; only its hash is kept, and keys are
 *   found by it (admit, keyFacts): no secret is handed to a store on the request path;
 * - admission runs no closure of its callers: what it weighs comes in as values;
 * - admit never lets the period's spent, plus what admitted calls still reserve (unexpired),
 *   plus the new call's reservation exceed the key's budget, however many admissions race;
 * - writeBatch is all or nothing and may be called again with the same batch (a request
 *   already in the ledger is skipped, so it is never settled twice); it fails, never
 *   hangs, when the database stops answering;
 * - a reservation whose owner's lease lapsed is charged once, at its worst case, by
 *   reconcile, and replaced by the real cost if the owner settles it after all.
 */
import { Context, type Effect } from "effect"
import type { AdmissionError, CostsNeeded, SpendStoreError } from "../errors"
import type { CreateKey, KeyFacts, KeyView, UpdateKey } from "../keys"
import type { RequestDetail, RequestPage, RequestQuery } from "../reports"
import type { Admission, AdmitInput, LedgerEntry, ReportQuery, RequestPosition, SpendReportData } from "./types"

export type {
  Admission,
  AdmitInput,
  AttemptRow,
  CostOption,
  LedgerEntry,
  ReportDimension,
  ReportQuery,
  RequestPosition,
  RequestRow,
  SpendReportData
} from "./types"
export { REPORT_DIMENSIONS } from "./types"

export interface SpendStoreShape {
  /** A new key and its secret, which is never readable again. */
  readonly createKey: (input: CreateKey, now: number) => Effect.Effect<{ readonly secret: string; readonly key: KeyView }, SpendStoreError>
  readonly listKeys: (now: number) => Effect.Effect<ReadonlyArray<KeyView>, SpendStoreError>
  readonly getKey: (id: string, now: number) => Effect.Effect<KeyView | undefined, SpendStoreError>
  /** Only what the patch gives changes; undefined for no such key. */
  readonly updateKey: (id: string, patch: UpdateKey, now: number) => Effect.Effect<KeyView | undefined, SpendStoreError>
  /** Revoking twice keeps the first time. */
  readonly revokeKey: (id: string, now: number) => Effect.Effect<KeyView | undefined, SpendStoreError>

  /**
   * Checks the key, its models and rate limits, and reserves the first option that fits its
   * budget. Runs nothing of the caller's: options are values, and a key that needs them
   * when none were given fails with CostsNeeded, having drawn and reserved nothing.
   */
  readonly admit: (input: AdmitInput) => Effect.Effect<Admission, AdmissionError | CostsNeeded>
  /** A key's facts by the SHA-256 of its secret (one indexed read), revoked keys included; undefined for no such key. */
  readonly keyFacts: (hash: string) => Effect.Effect<KeyFacts | undefined, SpendStoreError>

  /** Writes finished requests to the ledger and settles their reservations and token refunds, atomically. */
  readonly writeBatch: (entries: ReadonlyArray<LedgerEntry>) => Effect.Effect<void, SpendStoreError>
  /** Forgets reservations expired by `now` (they already stopped counting). */
  readonly sweepReservations: (now: number) => Effect.Effect<void, SpendStoreError>
  /** This process's lease on its reservations (see owner.ts), renewed by the ledger; a no-op while it holds none. */
  readonly renewLease: (now: number) => Effect.Effect<void, SpendStoreError>
  /** On shutdown: what this process still holds may be charged by the others at once. */
  readonly endLease: Effect.Effect<void, SpendStoreError>
  /** Charges the reservations of owners whose lease lapsed; answers how many. */
  readonly reconcile: (now: number) => Effect.Effect<number, SpendStoreError>

  readonly report: (query: ReportQuery) => Effect.Effect<SpendReportData, SpendStoreError>
  /** Newest first, ties broken by id. */
  readonly listRequests: (query: RequestQuery) => Effect.Effect<RequestPage, SpendStoreError>
  /** Where a request falls in that order, for a page that starts after it. */
  readonly requestPosition: (id: string) => Effect.Effect<RequestPosition | undefined, SpendStoreError>
  /** A request and its upstream attempts, by its `x-request-id`. */
  readonly getRequest: (id: string) => Effect.Effect<RequestDetail | undefined, SpendStoreError>
}

export class SpendStore extends Context.Tag("quorum/SpendStore")<SpendStore, SpendStoreShape>() {}
