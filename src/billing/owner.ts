/**
 * This process as the owner of the reservations it makes. A reservation names its owner,
 * and the owner keeps a lease in the database (renewed by the ledger every
 * LEASE_RENEW_MS while it holds any); once the lease has lapsed (a kill -9, a lost machine), any other
 * process charges the owner's reservations at their reserved worst case (see
 * SpendStore.reconcile), so requests it answered but never wrote to the ledger are paid
 * for within seconds, not after reservation_ttl_ms.
 */
import { randomBytes } from "node:crypto"
import { hostname } from "node:os"

export const OWNER = {
  id: "own_" + randomBytes(9).toString("base64url"),
  host: hostname(),
  pid: process.pid,
  startedAt: Date.now()
}

/** How long a lease holds without renewal: long enough for a busy event loop or a slow commit, short enough to reconcile in seconds. */
export const LEASE_MS = 5_000
export const LEASE_RENEW_MS = 1_000

/** What a reconciled request's ledger row says (its status is 0: the gateway never recorded the answer). */
export const RECONCILED =
  "reconciled: the gateway process serving this request stopped before writing it to the ledger; charged the worst case it reserved"
