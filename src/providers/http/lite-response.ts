/**
 * The part of WHATWG Response that the openai SDK and Quorum's transport read, over
 * undici's `request` result. A real Response (with its Headers, body ReadableStream and
 * AbortSignal plumbing) was about a tenth of the gateway's CPU per request in profiles.
 * Streams keep undici's Node Readable as `body`: both readers take any async iterable.
 */
import type { Readable } from "node:stream"

type RawHeaders = Record<string, string | Array<string> | undefined>

export class LiteHeaders {
  constructor(private readonly raw: RawHeaders) {}
  get(name: string): string | null {
    const value = this.raw[name.toLowerCase()]
    return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value
  }
  has(name: string): boolean {
    return this.raw[name.toLowerCase()] !== undefined
  }
  *entries(): IterableIterator<[string, string]> {
    for (const name of Object.keys(this.raw)) {
      const value = this.get(name)
      if (value !== null) yield [name, value]
    }
  }
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries()
  }
  forEach(callback: (value: string, name: string) => void): void {
    for (const [name, value] of this.entries()) callback(value, name)
  }
}

export class LiteResponse {
  readonly url: string
  readonly statusText = ""
  readonly headers: LiteHeaders
  constructor(
    readonly status: number,
    headers: RawHeaders,
    url: string,
    /** Buffered text, or null for a streamed body. */
    private readonly bodyText: string | null,
    readonly body: Readable | null
  ) {
    this.headers = new LiteHeaders(headers)
    this.url = url
  }
  get ok(): boolean {
    return this.status >= 200 && this.status < 300
  }
  async text(): Promise<string> {
    if (this.bodyText !== null) return this.bodyText
    if (this.body === null) return ""
    const chunks: Array<Buffer> = []
    for await (const chunk of this.body) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString("utf8")
  }
  async json(): Promise<unknown> {
    return JSON.parse(await this.text())
  }
}
