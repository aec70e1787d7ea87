/** What can end a consensus request without an answer; src/http maps each to its status and OpenAI error. */
import { Schema } from "effect"

export class InvalidConsensusRequest extends Schema.TaggedError<InvalidConsensusRequest>()("InvalidConsensusRequest", {
  message: Schema.String,
  param: Schema.NullOr(Schema.String)
}) {}

export class NoAnswer extends Schema.TaggedError<NoAnswer>()("NoAnswer", { message: Schema.String }) {}

/** Every answer was excluded by a gate (an invalid JSON answer, say): there is nothing valid to return. */
export class NoValidAnswer extends Schema.TaggedError<NoValidAnswer>()("NoValidAnswer", { message: Schema.String }) {}

/** A fan-out Quorum picks found nothing the caller's key allows (a key for `consensus` only, say). */
export class NoUsableModel extends Schema.TaggedError<NoUsableModel>()("NoUsableModel", { allowed: Schema.Array(Schema.String) }) {}
