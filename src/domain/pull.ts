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
import { Chunk, Effect, Option } from "effect"

export type Pull<A, E> = Effect.Effect<Chunk.Chunk<A>, Option.Option<E>>

/** All of `items` in one read, then the end. */
export const pullOf = <A>(items: Iterable<A>): Pull<A, never> => {
  let read = false
  return Effect.suspend(() => {
    if (read) return Effect.fail(Option.none())
    read = true
    return Effect.succeed(Chunk.fromIterable(items))
  })
}

/** Each element through `f`, in order; `f`'s failure ends the pull with it. */
export const mapEachEffect = <A, B, E, E2>(pull: Pull<A, E>, f: (a: A) => Effect.Effect<B, E2>): Pull<B, E | E2> =>
  Effect.flatMap(pull, (chunk) =>
    Effect.mapBoth(Effect.forEach(chunk, f), { onFailure: Option.some, onSuccess: Chunk.unsafeFromArray }))

/** Each read shown to `f` as it passes. */
export const tapChunks = <A, E>(pull: Pull<A, E>, f: (chunk: Chunk.Chunk<A>) => void): Pull<A, E> =>
  Effect.map(pull, (chunk) => {
    f(chunk)
    return chunk
  })
