/** What can end a consensus request without an answer, each with its status and OpenAI error. */
import { Schema } from "effect"
import { type ErrorAnswer, errorBody } from "../protocol/error-body"

export class InvalidConsensusRequest extends Schema.TaggedError<InvalidConsensusRequest>()("InvalidConsensusRequest", {
  message: Schema.String,
  param: Schema.NullOr(Schema.String)
}) {
  get answer(): ErrorAnswer {
    return { status: 400, body: errorBody(this.message, "invalid_request_error", this.param, "invalid_value") }
  }
}

export class NoAnswer extends Schema.TaggedError<NoAnswer>()("NoAnswer", { message: Schema.String }) {
  get answer(): ErrorAnswer {
    return { status: 502, body: errorBody(this.message, "upstream_error", null, "no_model_answered") }
  }
}

/** Every answer was excluded by a gate (an invalid JSON answer, say): there is nothing valid to return. */
export class NoValidAnswer extends Schema.TaggedError<NoValidAnswer>()("NoValidAnswer", { message: Schema.String }) {
  get answer(): ErrorAnswer {
    // The models answered, but none validly (JSON that breaks the schema): an upstream failure, as a malformed response is.
    return { status: 502, body: errorBody(this.message, "upstream_error", null, "no_valid_answer") }
  }
}

/** A fan-out Quorum picks found nothing the caller's key allows (a key for `consensus` only, say). */
export class NoUsableModel extends Schema.TaggedError<NoUsableModel>()("NoUsableModel", { allowed: Schema.Array(Schema.String) }) {
  get answer(): ErrorAnswer {
    return {
      status: 403,
      body: errorBody(`This key allows no model or route that a consensus can fan out to; it may use: ${this.allowed.join(", ") || "no model"}`, "invalid_request_error", "model", "model_not_allowed")
    }
  }
}
