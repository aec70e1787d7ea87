/**
 * Ids of requests, consensus runs and answers: `<prefix>-` and 24 hex digits, the first
 * 12 the creation time in milliseconds and the last 12 random (as UUIDv7 orders them).
 * Time first because ledger rows are keyed by these ids: a random key lands every insert
 * on a different page of each index, so a batch of rows rewrote as many pages as it had
 * rows; in time order they append to the last pages. 48 random bits make two ids of one
 * millisecond, across every process, collide about once in 10^14 pairs.
 */
import { randomUUID } from "node:crypto"

export const newId = (prefix: string): string =>
  // A UUID's last group is 12 random hex digits; randomUUID draws from a cached pool, so it is cheap.
  `${prefix}-${Date.now().toString(16).padStart(12, "0")}${randomUUID().slice(24)}`
