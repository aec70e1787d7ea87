/**
 * A source read one step at a time: each run of the effect is the next elements, or
 * fails with `Option.none()` at the end or `Option.some(error)`. The hot stream path
 * passes pulls from the upstream to the socket instead of Streams: every Stream
 * operator runs its channel machinery on each chunk, and an 8-chunk answer through the
 * provider's, the router's and the renderer's Streams cost ~250 µs of CPU against ~15
 * µs for the same reads as pulls (bench/ micro-measurement, warm; several times that on
 * an idle worker). `Stream.repeatEffectChunkOption` turns a pull into a Stream where a
 * Stream is worth its cost.
 */
import type { Chunk, Effect, Option } from "effect"

export type Pull<A, E> = Effect.Effect<Chunk.Chunk<A>, Option.Option<E>>
