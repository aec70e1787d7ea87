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
