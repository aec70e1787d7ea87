import { Schema } from "effect"

/** Redis, configured for replicas' shared state, cannot be used: start-up stops saying why (never with the URL). */
export class SharedStateError extends Schema.TaggedError<SharedStateError>()("SharedStateError", { message: Schema.String }) {}
