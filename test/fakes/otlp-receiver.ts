/**
 * A local OTLP/HTTP trace receiver: takes what an OpenTelemetry exporter posts to
 * /v1/traces (OTLP's JSON encoding) and keeps the spans, for tests that count them.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

export interface ReceivedSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly attributes: Record<string, unknown>
  readonly service: string | undefined
}

interface AnyValue {
  stringValue?: string
  intValue?: string | number
  doubleValue?: number
  boolValue?: boolean
  arrayValue?: { values?: Array<AnyValue> }
}

const valueOf = (v: AnyValue): unknown =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.boolValue ?? v.arrayValue?.values?.map(valueOf)

const attributesOf = (list: Array<{ key: string; value: AnyValue }> | undefined) => Object.fromEntries((list ?? []).map((a) => [a.key, valueOf(a.value)]))

export const startOtlpReceiver = async () => {
  const spans: Array<ReceivedSpan> = []
  const waiters: Array<() => void> = []
  const server = createServer((req, res) => {
    let body = ""
    req.on("data", (d) => (body += d))
    req.on("end", () => {
      if (req.url === "/v1/traces") {
        const payload = JSON.parse(body) as { resourceSpans?: Array<{ resource?: { attributes?: Array<{ key: string; value: AnyValue }> }; scopeSpans?: Array<{ spans?: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string; attributes?: Array<{ key: string; value: AnyValue }> }> }> }> }
        for (const rs of payload.resourceSpans ?? []) {
          const service = attributesOf(rs.resource?.attributes)["service.name"] as string | undefined
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              spans.push({ traceId: s.traceId, spanId: s.spanId, ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}), name: s.name, attributes: attributesOf(s.attributes), service })
            }
          }
        }
        for (const w of waiters.splice(0)) w()
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    /** Resolves once at least `n` spans have arrived. */
    received: (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => (spans.length >= n ? resolve() : waiters.push(check))
        check()
      }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
