/**
 * What admission answers when it refuses, the same from every store: clients and tests read
 * these messages and waits, so a store chooses only when to refuse, never how to say so.
 */
import { formatUsd } from "../../domain/money"
import { InsufficientQuota, RateLimited, Unauthorized } from "../errors"
import type { BudgetPeriod } from "../keys"
import type { CostOption } from "./types"

export const unknownKey = () => new Unauthorized({ message: "Incorrect API key provided. Create keys with the admin API (POST /admin/keys)." })

export const revokedKey = (prefix: string) => new Unauthorized({ message: `API key ${prefix}… was revoked.` })

/** The request bucket is below zero by `level`: the wait is how long `rpm` takes to refill it. */
export const requestsLimited = (keyId: string, rpm: number, level: number) =>
  new RateLimited({ keyId, limit: "requests", retryAfterMs: Math.ceil(-level / (rpm / 60_000)), message: `Rate limit reached: ${rpm} requests per minute for this key.` })

/** The token bucket is below zero by `level`; a request larger than the whole limit can never fit, and is told so. */
export const tokensLimited = (keyId: string, tpm: number, level: number, charge: number) =>
  new RateLimited({
    keyId,
    limit: "tokens",
    retryAfterMs: charge > tpm ? 60_000 : Math.ceil(-level / (tpm / 60_000)),
    message: charge > tpm
      ? `Request too large: it may use ${charge} tokens (prompt and max_tokens), above this key's limit of ${tpm} tokens per minute.`
      : `Rate limit reached: ${tpm} tokens per minute for this key (this request may use ${charge}).`
  })

/** The budget left cannot hold the cheapest way the request could run. */
export const quotaError = (keyId: string, budgetPeriod: BudgetPeriod, budget: number, spent: number, reserved: number, options: ReadonlyArray<CostOption>) => {
  const left = budget - spent - reserved
  const cheapest = Math.min(...options.map((o) => o.micros))
  return new InsufficientQuota({
    keyId,
    message: `You exceeded your current quota: this key's ${budgetPeriod === "day" ? "daily" : "monthly"} budget of $${formatUsd(budget)} ` +
      `has $${formatUsd(Math.max(0, left))} left (spent $${formatUsd(spent)}, reserved by calls in flight $${formatUsd(reserved)}), ` +
      `and this request may cost up to $${formatUsd(cheapest)}. Lower max_tokens to reserve less.`
  })
}
