/**
 * Token buckets for requests and tokens per minute. A bucket holds up to one minute's
 * allowance and refills continuously, so a key can burst its whole minute but never
 * sustain more; the state is (level, time) and lives in the key's row, so that every
 * worker and replica draws from the same bucket.
 */

export interface Bucket {
  readonly level: number
  readonly at: number
}

export type Take = { readonly ok: true; readonly bucket: Bucket } | { readonly ok: false; readonly retryAfterMs: number }

/** Refills `bucket` to `now` and takes `amount`, or says how long until it could. */
export const take = (bucket: Bucket | undefined, perMinute: number, amount: number, now: number): Take => {
  const perMs = perMinute / 60_000
  const level = bucket === undefined ? perMinute : Math.min(perMinute, bucket.level + Math.max(0, now - bucket.at) * perMs)
  if (amount <= level) return { ok: true, bucket: { level: level - amount, at: now } }
  // More than a whole minute's allowance can never fit; ask for a minute, the most a wait could help.
  if (amount > perMinute) return { ok: false, retryAfterMs: 60_000 }
  return { ok: false, retryAfterMs: Math.ceil((amount - level) / perMs) }
}
