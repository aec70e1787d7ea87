/**
 * A routed chat stream as the body of a streamed `POST /v1/responses`: the Responses
 * events as Server-Sent Events, one ResponsesStream per stream. A stream that
 * fails ends with response.failed, so the route needs no error handling of its own for
 * failures after the first byte (the Responses API, unlike chat, sends no `[DONE]`).
 */
import { eventFrames, type FailureAnswer, type Frames } from "../../protocol/frames"
import { ResponsesStream, sseEvent } from "./stream-events"
import type { ResponsesRequest } from "./wire"

/** The Responses events of one stream; a failure is answered as `answerFor` says. */
export const responsesFrames = <E>(request: ResponsesRequest, answerFor: (error: E) => FailureAnswer): Frames<E> =>
  eventFrames(new ResponsesStream(request), sseEvent, answerFor)
