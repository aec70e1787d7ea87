/** Why a request was refused before any upstream call; each maps to OpenAI's status and code. */
import { Schema } from "effect"

/** 401: no key, an unknown key, or a revoked one. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", { message: Schema.String }) {}

/** 403: the key may not use a model the request needs. */
export class ModelNotAllowed extends Schema.TaggedError<ModelNotAllowed>()("ModelNotAllowed", {
  models: Schema.Array(Schema.String),
  allowed: Schema.Array(Schema.String),
  /** The key refused, so that the ledger can say whose request it was. */
  keyId: Schema.String
}) {}

/** 429 rate_limit_exceeded, with retry-after. */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  limit: Schema.Literal("requests", "tokens"),
  message: Schema.String,
  retryAfterMs: Schema.Number,
  keyId: Schema.String
}) {}

/** 429 insufficient_quota: the key's budget for the period is spent (or reserved by calls in flight). */
export class InsufficientQuota extends Schema.TaggedError<InsufficientQuota>()("InsufficientQuota", {
  message: Schema.String,
  keyId: Schema.String
}) {}

/** The spend database failed; requests that need it are refused rather than let through unmetered. */
export class SpendStoreError extends Schema.TaggedError<SpendStoreError>()("SpendStoreError", { message: Schema.String }) {}

export type AdmissionError = Unauthorized | ModelNotAllowed | RateLimited | InsufficientQuota | SpendStoreError
