/** Why a request was refused before any upstream call; each maps to OpenAI's status and code. */
import { Schema } from "effect"
import { type ErrorAnswer, errorBody, retryAfterSeconds } from "../protocol/error-body"

/** 401: no key, an unknown key, or a revoked one. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", { message: Schema.String }) {
  get answer(): ErrorAnswer {
    return { status: 401, body: errorBody(this.message, "invalid_request_error", null, "invalid_api_key") }
  }
}

/** 403: the key may not use a model the request needs. */
export class ModelNotAllowed extends Schema.TaggedError<ModelNotAllowed>()("ModelNotAllowed", {
  models: Schema.Array(Schema.String),
  allowed: Schema.Array(Schema.String),
  /** The key refused, so that the ledger can say whose request it was. */
  keyId: Schema.String
}) {
  get answer(): ErrorAnswer {
    const asked = this.models.map((m) => `\`${m}\``).join(", ")
    return { status: 403, body: errorBody(`This key may not use ${asked}; it may use: ${this.allowed.join(", ") || "no model"}`, "invalid_request_error", "model", "model_not_allowed") }
  }
}

/** 429 rate_limit_exceeded, with retry-after. */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  limit: Schema.Literal("requests", "tokens"),
  message: Schema.String,
  retryAfterMs: Schema.Number,
  keyId: Schema.String
}) {
  get answer(): ErrorAnswer {
    // OpenAI's own shape: the type names the limit (requests or tokens).
    return { status: 429, body: errorBody(this.message, this.limit, null, "rate_limit_exceeded"), retryAfterSeconds: retryAfterSeconds(this.retryAfterMs) }
  }
}

/** 429 insufficient_quota: the key's budget for the period is spent (or reserved by calls in flight). */
export class InsufficientQuota extends Schema.TaggedError<InsufficientQuota>()("InsufficientQuota", {
  message: Schema.String,
  keyId: Schema.String
}) {
  get answer(): ErrorAnswer {
    return { status: 429, body: errorBody(this.message, "insufficient_quota", null, "insufficient_quota") }
  }
}

/** The spend database failed; requests that need it are refused rather than let through unmetered. */
export class SpendStoreError extends Schema.TaggedError<SpendStoreError>()("SpendStoreError", { message: Schema.String }) {
  get answer(): ErrorAnswer {
    return { status: 503, body: errorBody(`Quorum cannot meter this request: ${this.message}`, "server_error", null, "spend_store_unavailable") }
  }
}

/**
 * 500: the key is under a content policy the gateway's config no longer has (the config
 * changed after the key was given it). Its requests are refused, not let through
 * unchecked: a guardrail someone attached does not lapse silently.
 */
export class KeyPolicyMissing extends Schema.TaggedError<KeyPolicyMissing>()("KeyPolicyMissing", {
  policy: Schema.String,
  keyId: Schema.String
}) {
  get answer(): ErrorAnswer {
    return {
      status: 500,
      body: errorBody(
        `This key is under content policy \`${this.policy}\`, which the gateway's config does not define: the request is refused rather than let through unchecked. ` +
          "Define the policy again, or take it off the key (PATCH /admin/keys/{id}).",
        "server_error",
        null,
        "policy_not_configured"
      )
    }
  }
}

/**
 * Not a refusal: admission was asked without cost options for a key that needs them (it
 * gained a budget or a token limit since its facts were read). Nothing was drawn or
 * reserved; the caller computes the options and asks again. Never reaches a client.
 */
export class CostsNeeded extends Schema.TaggedError<CostsNeeded>()("CostsNeeded", {}) {}

export type AdmissionError = Unauthorized | ModelNotAllowed | RateLimited | InsufficientQuota | SpendStoreError | KeyPolicyMissing
