/**
 * How a route writes a chat stream in its own wire format (OpenAI's chunks and [DONE],
 * Anthropic's Messages events, OpenAI's Responses events): the frames for each chunk, for
 * the end, and for a failure after the first byte, which is an error event in the
 * stream, never a silent end. Plain functions over one stream's state, so that the hot
 * path runs them on a pull (domain/pull.ts) with no Stream operator per chunk.
 */
import { Chunk, Effect, Option } from "effect"
import type { Pull } from "../domain/pull"
import type { ChatCompletionChunk } from "./chat-response"

export interface Frames<E> {
  readonly chunk: (chunk: ChatCompletionChunk, out: Array<Uint8Array>) => void
  readonly end: (out: Array<Uint8Array>) => void
  readonly fail: (error: E, out: Array<Uint8Array>) => void
}

/** What a stream's failure would have answered before the stream began: its HTTP status and message. */
export interface FailureAnswer {
  readonly status: number
  readonly message: string
}

/** A wire format's event machine for one stream (Anthropic's Messages, OpenAI's Responses): the events a chunk, the end and a failure make. */
export interface StreamEvents<Ev> {
  push(chunk: ChatCompletionChunk): ReadonlyArray<Ev>
  end(): ReadonlyArray<Ev>
  fail(status: number, message: string): ReadonlyArray<Ev>
}

const encoder = new TextEncoder()

/** The frames of an event machine, each event written by `frame` (its SSE text); a failure is answered as `answerFor` says. */
export const eventFrames = <Ev, E>(events: StreamEvents<Ev>, frame: (event: Ev) => string, answerFor: (error: E) => FailureAnswer): Frames<E> => {
  const encode = (list: ReadonlyArray<Ev>, out: Array<Uint8Array>) => {
    for (const event of list) out.push(encoder.encode(frame(event)))
  }
  return {
    chunk: (chunk, out) => encode(events.push(chunk), out),
    end: (out) => encode(events.end(), out),
    fail: (error, out) => {
      const answer = answerFor(error)
      encode(events.fail(answer.status, answer.message), out)
    }
  }
}

/**
 * The frames of a stream of chunks, as a pull that never fails: its last read is the
 * end's frames or the failure's, after which it ends. `settled` is told how it ended.
 */
export const framesPull = <E>(
  chunks: Pull<ChatCompletionChunk, E>,
  frames: Frames<E>,
  settled: (failure: E | undefined) => void = () => {}
): Pull<Uint8Array, never> => {
  let over = false
  const rendered = (batch: Chunk.Chunk<ChatCompletionChunk>) => {
    const out: Array<Uint8Array> = []
    for (const chunk of batch) frames.chunk(chunk, out)
    return Effect.succeed(Chunk.unsafeFromArray(out))
  }
  const last = (error: Option.Option<E>) => {
    over = true
    const out: Array<Uint8Array> = []
    if (Option.isNone(error)) frames.end(out)
    else frames.fail(error.value, out)
    settled(Option.getOrUndefined(error))
    return Effect.succeed(Chunk.unsafeFromArray(out))
  }
  const next = Effect.matchEffect(chunks, { onSuccess: rendered, onFailure: last })
  return Effect.suspend(() => (over ? Effect.fail(Option.none()) : next))
}
