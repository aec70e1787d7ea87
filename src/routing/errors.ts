import { Schema } from "effect"
import { type ErrorAnswer, errorBody, retryAfterSeconds } from "../protocol/error-body"

export class UnknownModel extends Schema.TaggedError<UnknownModel>()("UnknownModel", {
  model: Schema.String,
  known: Schema.Array(Schema.String)
}) {
  get answer(): ErrorAnswer {
    return { status: 404, body: errorBody(`The model \`${this.model}\` does not exist; available: ${this.known.join(", ")}`, "invalid_request_error", "model", "model_not_found") }
  }
}

/** Every deployment behind a model name is cooling down after repeated failures. */
export class AllCoolingDown extends Schema.TaggedError<AllCoolingDown>()("AllCoolingDown", {
  model: Schema.String,
  retryAfterMs: Schema.Number
}) {
  get answer(): ErrorAnswer {
    return {
      status: 503,
      body: errorBody(`Every deployment of \`${this.model}\` is cooling down after repeated failures`, "upstream_error", null, "upstream_unavailable"),
      retryAfterSeconds: retryAfterSeconds(this.retryAfterMs)
    }
  }
}

/** No target of the model fits the request's own limits (max_latency_ms, max_cost_usd): which limit excluded which. */
export class OutsideLimits extends Schema.TaggedError<OutsideLimits>()("OutsideLimits", {
  model: Schema.String,
  reasons: Schema.String
}) {
  get answer(): ErrorAnswer {
    return { status: 400, body: errorBody(`No target of \`${this.model}\` fits this request's limits: ${this.reasons}`, "invalid_request_error", "quorum", "no_target_within_limits") }
  }
}
