/** A cached answer: the completion as it was first given, and what it cost then (what a hit saves). */
import { Schema } from "effect"
import { ChatCompletion } from "../protocol/chat-response"

export const CachedAnswer = Schema.Struct({
  completion: ChatCompletion,
  /** The upstream cost of the answer when it was fetched, in micro-dollars. */
  cost_micros: Schema.Number,
  /** The deployment that gave it. */
  deployment: Schema.String,
  /** Epoch milliseconds. */
  stored_at: Schema.Number
})
export type CachedAnswer = typeof CachedAnswer.Type

/** Its size in a store, for the cache's bound in bytes: the JSON it is kept as. */
export const answerBytes = (answer: CachedAnswer): number => Buffer.byteLength(JSON.stringify(answer))
