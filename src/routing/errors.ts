import { Schema } from "effect"

export class UnknownModel extends Schema.TaggedError<UnknownModel>()("UnknownModel", {
  model: Schema.String,
  known: Schema.Array(Schema.String)
}) {}

/** Every deployment behind a model name is cooling down after repeated failures. */
export class AllCoolingDown extends Schema.TaggedError<AllCoolingDown>()("AllCoolingDown", {
  model: Schema.String,
  retryAfterMs: Schema.Number
}) {}

/** No target of the model fits the request's own limits (max_latency_ms, max_cost_usd): which limit excluded which. */
export class OutsideLimits extends Schema.TaggedError<OutsideLimits>()("OutsideLimits", {
  model: Schema.String,
  reasons: Schema.String
}) {}
