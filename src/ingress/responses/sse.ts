/**
 * A routed chat stream as the body of a streamed `POST /v1/responses`: the Responses
 * events as Server-Sent Events, one ResponsesStream per run of the body. A stream that
 * fails ends with response.failed, so the route needs no error handling of its own for
 * failures after the first byte (the Responses API, unlike chat, sends no `[DONE]`).
 */
import type { Stream } from "effect"
import type { ChatCompletionChunk } from "../../protocol/chat-response"
import { type Frames, framesStream } from "../../protocol/frames"
import type { StreamEvent } from "./output"
import { ResponsesStream, sseEvent } from "./stream-events"
import type { ResponsesRequest } from "./wire"

const encoder = new TextEncoder()

/** What a stream's failure would have answered before the stream began: its HTTP status and message. */
export interface FailureAnswer {
  readonly status: number
  readonly message: string
}

/** The Responses events of one stream; a failure is answered as `answerFor` says. */
export const responsesFrames = <E>(request: ResponsesRequest, answerFor: (error: E) => FailureAnswer): Frames<E> => {
  const events = new ResponsesStream(request)
  const encode = (list: ReadonlyArray<StreamEvent>, out: Array<Uint8Array>) => {
    for (const event of list) out.push(encoder.encode(sseEvent(event)))
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

/** The same over a Stream of chunks. */
export const responsesSse = <E>(
  request: ResponsesRequest,
  chunks: Stream.Stream<ChatCompletionChunk, E>,
  answerFor: (error: E) => FailureAnswer
): Stream.Stream<Uint8Array> => framesStream(chunks, () => responsesFrames(request, answerFor))
