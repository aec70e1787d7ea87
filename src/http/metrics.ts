/**
 * GET /metrics: Prometheus' text format, for the whole node:cluster (telemetry/cluster.ts).
 * Open to a scraper on this machine (a loopback address); from anywhere else it takes the
 * admin key, since labels name keys and models.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Option } from "effect"
import type { ResolvedConfig } from "../config/gateway-config"
import { CONTENT_TYPE, metricsText } from "../telemetry/cluster"
import type { TelemetryShape } from "../telemetry/telemetry"
import { isAdmin } from "./feedback"

const isLoopback = (address: string): boolean => address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127.")

export const makeMetricsHandler = (config: ResolvedConfig, telemetry: TelemetryShape) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const local = Option.match(request.remoteAddress, { onNone: () => false, onSome: isLoopback })
    if (!local && !isAdmin(config, request.headers["authorization"])) {
      return HttpServerResponse.unsafeJson(
        { error: { message: "Metrics are for a scraper on this machine, or for the admin key: send it as Authorization: Bearer <key>.", type: "invalid_request_error", param: null, code: "invalid_api_key" } },
        { status: 401 }
      )
    }
    const text = yield* Effect.promise(() => metricsText(telemetry.metrics.registry))
    return HttpServerResponse.text(text, { contentType: CONTENT_TYPE })
  })
