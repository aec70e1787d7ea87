/**
 * Virtual keys: `qk-` and 32 random bytes (base64url). Only a SHA-256 of the key is
 * stored; a key is shown once, when it is created. A fast hash is enough because the
 * key has 256 bits of entropy: there is nothing to brute-force.
 */
import { createHash, randomBytes } from "node:crypto"
import { Schema } from "effect"
import { usdToMicros } from "../domain/money"
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
export const periodOf = (period: BudgetPeriod, now: number): string => period === "day" ? dayOf(now) : monthOf(now)

interface Span {
  readonly start: number
  readonly end: number
  readonly name: string
}

/**
 * Every request with a key, and every ledger row, names its period: the last span named is
 * kept rather than a date formatted each time, and a moment outside it, earlier or later,
 * finds its own.
 */
const keptSpan = (spanOf: (date: Date) => Span) => {
  let kept: Span = { start: 0, end: 0, name: "" }
  return (now: number): string => {
    if (now < kept.start || now >= kept.end) kept = spanOf(new Date(now))
    return kept.name
  }
}

/** The UTC day of an epoch-ms time, "YYYY-MM-DD". */
export const dayOf = keptSpan((date) => {
  const [year, month, day] = [date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()]
  return { start: Date.UTC(year, month, day), end: Date.UTC(year, month, day + 1), name: date.toISOString().slice(0, 10) }
})

/** The UTC month of an epoch-ms time, "YYYY-MM". */
export const monthOf = keptSpan((date) => {
  const [year, month] = [date.getUTCFullYear(), date.getUTCMonth()]
  return { start: Date.UTC(year, month, 1), end: Date.UTC(year, month + 1, 1), name: date.toISOString().slice(0, 7) }
})

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
  /** Labels routing rules match on (`when: {key_tags: [...]}`). */
  tags: Schema.Array(Schema.String),
  /** Content policies (names from the config's `policies:`) every request of this key is under. */
  policies: Schema.Array(Schema.String),
  created_at: Schema.Number,
  updated_at: Schema.Number,
  revoked_at: Schema.NullOr(Schema.Number),
  last_used_at: Schema.NullOr(Schema.Number),
  spend: Schema.Struct({ period: Schema.String, spent_usd: UsdAmount, reserved_usd: UsdAmount })
})
export type KeyView = typeof KeyView.Type

const Usd = Schema.Number.pipe(Schema.nonNegative(), Schema.lessThanOrEqualTo(1e9))
const PerMinute = Schema.Int.pipe(Schema.positive())
const Tag = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._:-]{1,64}$/, { message: () => "expected 1 to 64 letters, digits, '.', '_', ':' or '-'" }))
const PolicyName = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))

/** POST /admin/keys. Omitted limits are no limits. */
export const CreateKey = Schema.Struct({
  name: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)),
  models: Schema.optional(Schema.NullOr(Schema.Array(Schema.String.pipe(Schema.minLength(1))))),
  budget_usd: Schema.optional(Schema.NullOr(Usd)),
  budget_period: Schema.optional(BudgetPeriod),
  rpm: Schema.optional(Schema.NullOr(PerMinute)),
  tpm: Schema.optional(Schema.NullOr(PerMinute)),
  tags: Schema.optional(Schema.Array(Tag).pipe(Schema.maxItems(50))),
  policies: Schema.optional(Schema.Array(PolicyName).pipe(Schema.maxItems(50)))
})
export type CreateKey = typeof CreateKey.Type

/**
 * A new key as every store keeps it, before its own encoding: its secret (shown once),
 * id, hash and display prefix, and its settings with their defaults (no limit, a monthly
 * budget period, tags and policies each once).
 */
export const newKeyOf = (input: CreateKey) => {
  const secret = newKeySecret()
  return {
    secret,
    id: newKeyId(),
    name: input.name,
    hash: hashKey(secret),
    prefix: displayPrefix(secret),
    models: input.models == null ? null : [...input.models],
    budgetMicros: input.budget_usd == null ? null : usdToMicros(input.budget_usd),
    budgetPeriod: input.budget_period ?? "month",
    rpm: input.rpm ?? null,
    tpm: input.tpm ?? null,
    tags: distinct(input.tags ?? []),
    policies: distinct(input.policies ?? [])
  } as const
}

/** PATCH /admin/keys/{id}: only what is given changes; null removes a limit; tags and policies given replace the key's. */
export const UpdateKey = Schema.partial(CreateKey)
export type UpdateKey = typeof UpdateKey.Type

/**
 * What the request path knows of its caller before admission: who the key is, what
 * routing and content policies read (tags, policy names), what it may call, and whether
 * admission will need the request's cost options (it has a budget or a token limit).
 * Read by the key's hash and cached for a moment (spend.ts); admission still checks the
 * key itself, so a key revoked meanwhile is refused there.
 */
export interface KeyFacts {
  readonly id: string
  /** The SHA-256 of its secret (hashKey), which it was found by: admission locks the key by it, without hashing again. */
  readonly hash: string
  readonly prefix: string
  readonly tags: ReadonlyArray<string>
  readonly policies: ReadonlyArray<string>
  /** null: any model or route. */
  readonly models: ReadonlyArray<string> | null
  readonly needsCost: boolean
  /** The period its spend is counted in: what a refused request's cost (a judge's call) is charged to. */
  readonly budgetPeriod: BudgetPeriod
  readonly revoked: boolean
}

/** A list without repeats, in the order first given. */
export const distinct = (items: ReadonlyArray<string>): ReadonlyArray<string> => [...new Set(items)]
