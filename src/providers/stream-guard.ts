import { Stream } from "effect"
import { UpstreamError } from "./upstream-error"

/**
 * Fails a stream that ends before an element marked terminal went by. Upstream SDKs and
 * SSE readers simply stop when a connection closes; this is what tells a cut stream
 * from a finished one.
 */
export const failIfUnfinished = <A>(
  stream: Stream.Stream<A, UpstreamError>,
  isTerminal: (element: A) => boolean,
  expected: string
): Stream.Stream<A, UpstreamError> =>
  Stream.suspend(() => {
    let finished = false
    return stream.pipe(
      Stream.map((element) => {
        if (!finished && isTerminal(element)) finished = true
        return element
      }),
      Stream.concat(
        Stream.suspend(() =>
          finished
            ? Stream.empty
            : Stream.fail(
              new UpstreamError({ kind: "stream_cut", message: `the upstream closed the stream before ${expected}` })
            )
        )
      )
    )
  })
