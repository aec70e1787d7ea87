/**
 * Virtual keys: `qk-` and 32 random bytes (base64url). Only a SHA-256 of the key is
 * stored; a key is shown once, when it is created. A fast hash is enough because the
 * key has 256 bits of entropy: there is nothing to brute-force.
 */
import { createHash, randomBytes } from "node:crypto"
import { Schema } from "effect"
import { UsdAmount } from "./reports"

export const KEY_PREFIX = "qk-"

export const newKeySecret = (): string => KEY_PREFIX + randomBytes(32).toString("base64url")
export const newKeyId = (): string => "key_" + randomBytes(9).toString("base64url")
export const hashKey = (secret: string): string => createHash("sha256").update(secret).digest("hex")
/** What listings show, to tell keys apart without revealing them. */
export const displayPrefix = (secret: string): string => secret.slice(0, KEY_PREFIX.length + 6)

export const BudgetPeriod = Schema.Literal("day", "month")
export type BudgetPeriod = typeof BudgetPeriod.Type

/** The period a moment falls in, in UTC: "2026-11-24" or "2026-11". */
export const periodOf = (period: BudgetPeriod, now: number): string => {
  const iso = new Date(now).toISOString()
  return period === "day" ? iso.slice(0, 10) : iso.slice(0, 7)
}

const DAY_MS = 86_400_000
let cachedDay = { start: 0, end: 0, name: "" }

/** The UTC day of an epoch-ms time, "YYYY-MM-DD"; two per ledger request, so the last one is kept rather than formatted each time. */
export const dayOf = (now: number): string => {
  if (now >= cachedDay.start && now < cachedDay.end) return cachedDay.name
  const start = now - (((now % DAY_MS) + DAY_MS) % DAY_MS)
  const name = new Date(now).toISOString().slice(0, 10)
  cachedDay = { start, end: start + DAY_MS, name }
  return name
}

/** A key as the admin API shows it: never its secret, never its hash. */
export const KeyView = Schema.Struct({
  id: Schema.String,
  object: Schema.Literal("key"),
  name: Schema.String,
  prefix: Schema.String,
  models: Schema.NullOr(Schema.Array(Schema.String)),
  budget_usd: Schema.NullOr(Schema.Number),
  budget_period: BudgetPeriod,
  rpm: Schema.NullOr(Schema.Number),
  tpm: Schema.NullOr(Schema.Number),
  created_at: Schema.Number,
  updated_at: Schema.Number,
  revoked_at: Schema.NullOr(Schema.Number),
  last_used_at: Schema.NullOr(Schema.Number),
  spend: Schema.Struct({ period: Schema.String, spent_usd: UsdAmount, reserved_usd: UsdAmount })
})
export type KeyView = typeof KeyView.Type

const Usd = Schema.Number.pipe(Schema.nonNegative(), Schema.lessThanOrEqualTo(1e9))
const PerMinute = Schema.Int.pipe(Schema.positive())

/** POST /admin/keys. Omitted limits are no limits. */
export const CreateKey = Schema.Struct({
  name: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)),
  models: Schema.optional(Schema.NullOr(Schema.Array(Schema.String.pipe(Schema.minLength(1))))),
  budget_usd: Schema.optional(Schema.NullOr(Usd)),
  budget_period: Schema.optional(BudgetPeriod),
  rpm: Schema.optional(Schema.NullOr(PerMinute)),
  tpm: Schema.optional(Schema.NullOr(PerMinute))
})
export type CreateKey = typeof CreateKey.Type

/** PATCH /admin/keys/{id}: only what is given changes; null removes a limit. */
export const UpdateKey = Schema.partial(CreateKey)
export type UpdateKey = typeof UpdateKey.Type
