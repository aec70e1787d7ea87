/**
 * A routed chat stream as the body of a streamed `POST /v1/responses`: the Responses
 * events as Server-Sent Events, one ResponsesStream per run of the body. A stream that
 * fails ends with response.failed, so the route needs no error handling of its own for
 * failures after the first byte (the Responses API, unlike chat, sends no `[DONE]`).
 */
import { Stream } from "effect"
import type { ChatCompletionChunk } from "../../protocol/chat-response"
import { ResponsesStream, sseEvent } from "./stream-events"
import type { ResponsesRequest } from "./wire"

const encoder = new TextEncoder()

/** What a stream's failure would have answered before the stream began: its HTTP status and message. */
export interface FailureAnswer {
  readonly status: number
  readonly message: string
}

export const responsesSse = <E, R>(
  request: ResponsesRequest,
  chunks: Stream.Stream<ChatCompletionChunk, E, R>,
  answerFor: (error: E) => FailureAnswer
): Stream.Stream<Uint8Array, never, R> =>
  Stream.suspend(() => {
    const events = new ResponsesStream(request)
    return chunks.pipe(
      Stream.mapConcat((chunk) => events.push(chunk)),
      Stream.concat(Stream.suspend(() => Stream.fromIterable(events.end()))),
      Stream.catchAll((error) => {
        const answer = answerFor(error)
        return Stream.suspend(() => Stream.fromIterable(events.fail(answer.status, answer.message)))
      }),
      Stream.map((event) => encoder.encode(sseEvent(event)))
    )
  })
