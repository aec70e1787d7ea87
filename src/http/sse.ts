/** Server-Sent Events frames as OpenAI streams them. */
const encoder = new TextEncoder()

export const sse = (data: unknown): Uint8Array => encoder.encode(`data: ${JSON.stringify(data)}\n\n`)

/** The frame that ends a stream that finished. */
export const DONE = encoder.encode("data: [DONE]\n\n")

export const SSE_HEADERS = { "cache-control": "no-cache", "x-accel-buffering": "no" } as const
