/**
 * The admin API: virtual keys (create, list, show, update, revoke), spend reports, the
 * ledger's requests and the ledger writer's status. Declared in api.ts (AdminGroup) and
 * served by HttpApi, behind the admin key from the environment (QUORUM_ADMIN_KEY unless
 * `auth.admin_key_env` names another), checked by a security middleware; off without one.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Layer, Option, Redacted, Schema } from "effect"
import { timingSafeEqual, createHash } from "node:crypto"
import { GatewayConfig, type ResolvedConfig } from "../config/gateway-config"
import { CreateKey, UpdateKey } from "../billing/keys"
import { bearer, Spend } from "../billing/spend"
import type { ErrorBody } from "../protocol/error-body"
import type { RequestQuery } from "../billing/reports"
import { REPORT_DIMENSIONS, type ReportDimension, SpendStore, type SpendStoreShape } from "../billing/store/store"
import { AdminKey, AdminKeyRefused, ServedApi } from "./api"
import { answeringDefects, type ClientError, errorResponse, InvalidRequest, KeyNotFound } from "./errors"
import { jsonBodyReader } from "./read-json-body"
import { Router } from "../routing/router"
import cluster from "node:cluster"
import { availableParallelism } from "node:os"

/** 404: the ledger has no request with this id (or not yet: rows are written every `flush_ms`). */
export class RequestNotFound extends Schema.TaggedError<RequestNotFound>()("RequestNotFound", { id: Schema.String }) {
  response() {
    return HttpServerResponse.unsafeJson(
      { error: { message: `No request with id \`${this.id}\` in the ledger`, type: "invalid_request_error", param: "id", code: "request_not_found" } } satisfies ErrorBody,
      { status: 404 }
    )
  }
}

const readCreate = jsonBodyReader(CreateKey)
const readUpdate = jsonBodyReader(UpdateKey)

const digest = (text: string) => createHash("sha256").update(text).digest()

const DAY = /^\d{4}-\d{2}-\d{2}$/
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?$/i
const STATUS = /^[1-5]\d\d$/
const STATUS_CLASS = /^([1-5])xx$/i
const MAX_PAGE = 500
const DEFAULT_PAGE = 50

const invalid = (param: string, message: string) =>
  new InvalidRequest({ message: `Invalid value for '${param}': ${message}`, param, code: "invalid_value" })

/**
 * A request's query parameters, each given at most once and all of them known: a
 * misspelt filter (`models=`) would otherwise answer for everything, silently.
 */
const queryParams = (known: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const search = yield* HttpServerRequest.ParsedSearchParams
    const values = new Map<string, string>()
    for (const [name, value] of Object.entries(search)) {
      if (!known.includes(name)) {
        return yield* new InvalidRequest({ message: `Unknown parameter: '${name}'; this route takes ${known.join(", ")}`, param: name, code: "unknown_parameter" })
      }
      if (Array.isArray(value)) return yield* invalid(name, "given more than once")
      values.set(name, value as string)
    }
    return values
  })

const reportQuery = Effect.gen(function*() {
  const params = yield* queryParams(["group_by", "from", "to", "key"])
  const groupBy = (params.get("group_by") ?? "key,model").split(",").map((d) => d.trim()).filter((d) => d !== "")
  for (const d of groupBy) {
    if (!(REPORT_DIMENSIONS as ReadonlyArray<string>).includes(d)) {
      return yield* invalid("group_by", `\`${d}\`; expected a comma-separated list of ${REPORT_DIMENSIONS.join(", ")}`)
    }
  }
  const from = params.get("from")
  const to = params.get("to")
  for (const [name, value] of [["from", from], ["to", to]] as const) {
    if (value !== undefined && !DAY.test(value)) return yield* invalid(name, "expected a UTC date as YYYY-MM-DD")
  }
  return { groupBy: groupBy as Array<ReportDimension>, from, to, keyId: params.get("key") }
})

/** A moment as epoch ms: a UTC date (its start, or for `to` its end) or an ISO timestamp (UTC unless it has an offset). */
const moment = (name: "from" | "to", value: string) =>
  Effect.gen(function*() {
    const day = DAY.test(value)
    if (!day && !TIMESTAMP.test(value)) {
      return yield* invalid(name, `\`${value}\`; expected a UTC date (YYYY-MM-DD) or an ISO timestamp (YYYY-MM-DDTHH:MM:SSZ)`)
    }
    const ms = Date.parse(day || /(Z|[+-]\d{2}:\d{2})$/i.test(value) ? value : `${value}Z`)
    if (Number.isNaN(ms)) return yield* invalid(name, `\`${value}\` is not a date`)
    // `to` is exclusive; a date means that whole day.
    return name === "to" && day ? ms + 86_400_000 : ms
  })

const statusFilter = (value: string) => {
  if (STATUS.test(value)) return Effect.succeed({ min: Number(value), max: Number(value) })
  const cls = STATUS_CLASS.exec(value)
  if (cls !== null) return Effect.succeed({ min: Number(cls[1]) * 100, max: Number(cls[1]) * 100 + 99 })
  return Effect.fail(invalid("status", `\`${value}\`; expected an HTTP status (429) or a class (2xx, 4xx, 5xx)`))
}

const pageSize = (value: string | undefined) => {
  if (value === undefined) return Effect.succeed(DEFAULT_PAGE)
  const n = Number(value)
  return /^\d+$/.test(value) && n >= 1 && n <= MAX_PAGE
    ? Effect.succeed(n)
    : Effect.fail(invalid("limit", `\`${value}\`; expected an integer from 1 to ${MAX_PAGE}`))
}

const requestQuery = (store: SpendStoreShape) =>
  Effect.gen(function*() {
    const params = yield* queryParams(["key", "model", "status", "from", "to", "limit", "after"])
    const optional = <A, E>(name: string, parse: (value: string) => Effect.Effect<A, E>) => {
      const value = params.get(name)
      return value === undefined ? Effect.succeed(undefined) : parse(value)
    }
    const after = yield* optional("after", (id) =>
      Effect.flatMap(store.requestPosition(id), (position) =>
        position === undefined ? Effect.fail(invalid("after", `no request with id \`${id}\` in the ledger`)) : Effect.succeed(position)))
    return {
      keyId: params.get("key"),
      model: params.get("model"),
      status: yield* optional("status", statusFilter),
      from: yield* optional("from", (v) => moment("from", v)),
      to: yield* optional("to", (v) => moment("to", v)),
      limit: yield* pageSize(params.get("limit")),
      after
    } satisfies RequestQuery
  })

/**
 * A key spec is checked strictly: a misspelt field (`budget` for `budget_usd`) would
 * otherwise make a key without the limit its creator meant, a misspelt model a key that
 * can call nothing, and a misspelt policy a key whose requests are all refused.
 */
const checkSpec = <A extends UpdateKey>(config: ResolvedConfig, spec: A) =>
  Effect.gen(function*() {
    const known = new Set(Object.keys(CreateKey.fields))
    for (const field of Object.keys(spec)) {
      if (!known.has(field)) {
        return yield* new InvalidRequest({ message: `Unknown parameter: '${field}'; a key takes ${[...known].join(", ")}`, param: field, code: "unknown_parameter" })
      }
    }
    const names = [...config.deployments.keys(), ...config.routes.keys(), "consensus", ...[...config.consensus.presets.keys()].map((id) => `consensus/${id}`)]
    for (const [i, model] of (spec.models ?? []).entries()) {
      if (!names.includes(model)) {
        return yield* new InvalidRequest({ message: `Unknown model \`${model}\`; available: ${names.join(", ")}`, param: `models[${i}]`, code: "model_not_found" })
      }
    }
    yield* checkPolicies(config, spec.policies ?? [])
    return spec
  })

/** Every policy a key names must be one of the config's `policies:`. */
const checkPolicies = (config: ResolvedConfig, policies: ReadonlyArray<string>) => {
  const defined = config.policies.map((p) => p.name)
  const unknown = policies.findIndex((name) => !defined.includes(name))
  if (unknown === -1) return Effect.void
  const available = defined.length === 0 ? "the config defines no policies (`policies:`)" : `the config defines: ${defined.join(", ")}`
  return Effect.fail(new InvalidRequest({ message: `Unknown policy \`${policies[unknown]}\`; ${available}`, param: `policies[${unknown}]`, code: "policy_not_found" }))
}

/**
 * The admin key, checked by HttpApi's security middleware before any admin handler runs.
 * Digests are compared, so that neither the key's length nor its content leaks through timing.
 */
export const AdminKeyLive = Layer.effect(
  AdminKey,
  Effect.map(GatewayConfig, (config) =>
    AdminKey.of({
      // HttpApi's bearer token is the header minus its first 7 characters, whatever the
      // scheme: the header is read again with the parser virtual keys use.
      adminKey: () =>
        Effect.flatMap(Effect.serviceOption(HttpServerRequest.HttpServerRequest), (request) => {
          const expected = config.auth.adminKey
          if (expected === undefined) return refused(`The admin API is off: set ${config.auth.adminKeyEnv} to an admin key to turn it on.`)
          const given = Option.isSome(request) ? bearer(request.value.headers["authorization"]) : undefined
          return given !== undefined && timingSafeEqual(digest(given), digest(Redacted.value(expected)))
            ? Effect.void
            : refused("Incorrect or missing admin key: send the admin key as Authorization: Bearer <key>.")
        })
    }))
)

const refused = (message: string) =>
  Effect.fail(new AdminKeyRefused({ error: { message, type: "invalid_request_error", param: null, code: "invalid_api_key" } }))

/**
 * The admin routes, served by HttpApi from their declaration in api.ts. Handlers take the
 * raw request: bodies and query parameters are read here, so that every rejection is in
 * OpenAI's shape and names the field or parameter (HttpApi's own decoding errors do not).
 */
const percentiles = (health: Router["health"], id: string, stream: boolean) => ({
  p50: health.latencyMs(id, stream, 50) ?? null,
  p90: health.latencyMs(id, stream, 90) ?? null,
  p99: health.latencyMs(id, stream, 99) ?? null
})

/** Every deployment's live health, as this worker's router sees it. */
const deploymentHealth = (config: ResolvedConfig, router: Router) => ({
  object: "deployment_health" as const,
  pid: process.pid,
  // Each worker has its own view: the page says so when there are several.
  workers: cluster.isWorker ? Number(process.env["QUORUM_WORKERS"]) || availableParallelism() : 1,
  data: [...config.deployments.values()].map((d) => ({
    model: d.id,
    provider: d.provider,
    circuit: router.circuit(d.id),
    in_flight: router.health.inFlight(d.id),
    error_rate: router.health.errorRate(d.id),
    latency_ms: percentiles(router.health, d.id, false),
    first_token_ms: percentiles(router.health, d.id, true)
  }))
})

export const AdminLive = HttpApiBuilder.group(ServedApi, "admin", (handlers) =>
  Effect.gen(function*() {
    const config = yield* GatewayConfig
    const store = yield* SpendStore
    const spend = yield* Spend
    const router = yield* Router
    const answer = <R>(route: string, handler: Effect.Effect<HttpServerResponse.HttpServerResponse, ClientError | RequestNotFound, R>) =>
      answeringDefects(
        route,
        handler.pipe(Effect.catchAll((error) => Effect.succeed(error._tag === "RequestNotFound" ? error.response() : errorResponse(error))))
      )
    const found = <A>(id: string, value: A | undefined) => (value === undefined ? Effect.fail(new KeyNotFound({ id })) : Effect.succeed(value))

    return handlers
      .handleRaw("createKey", () =>
        answer("POST /admin/keys", Effect.gen(function*() {
          const input = yield* Effect.flatMap(readCreate(config.maxBodyBytes), (spec) => checkSpec(config, spec))
          const { key, secret } = yield* store.createKey(input, Date.now())
          // The only time the key is shown.
          return HttpServerResponse.unsafeJson({ ...key, key: secret }, { status: 201 })
        })))
      .handleRaw("listKeys", () =>
        answer("GET /admin/keys", Effect.map(store.listKeys(Date.now()), (data) => HttpServerResponse.unsafeJson({ object: "list", data }))))
      .handleRaw("getKey", ({ path }) =>
        answer("GET /admin/keys/{id}", Effect.map(Effect.flatMap(store.getKey(path.id, Date.now()), (key) => found(path.id, key)), (key) => HttpServerResponse.unsafeJson(key))))
      .handleRaw("updateKey", ({ path }) =>
        answer("PATCH /admin/keys/{id}", Effect.gen(function*() {
          const patch = yield* Effect.flatMap(readUpdate(config.maxBodyBytes), (spec) => checkSpec(config, spec))
          const updated = yield* store.updateKey(path.id, patch, Date.now())
          // This worker's requests see the change at once; the others' within a second (their cache of key facts).
          spend.forgetKeys()
          return HttpServerResponse.unsafeJson(yield* found(path.id, updated))
        })))
      .handleRaw("revokeKey", ({ path }) =>
        answer("DELETE /admin/keys/{id}", Effect.gen(function*() {
          const revoked = yield* store.revokeKey(path.id, Date.now())
          spend.forgetKeys()
          return HttpServerResponse.unsafeJson(yield* found(path.id, revoked))
        })))
      .handleRaw("spend", () =>
        answer("GET /admin/spend", Effect.gen(function*() {
          const query = yield* reportQuery
          const { data, total } = yield* store.report(query)
          return HttpServerResponse.unsafeJson({ object: "spend_report", group_by: query.groupBy, from: query.from ?? null, to: query.to ?? null, data, total })
        })))
      .handleRaw("listRequests", () =>
        answer("GET /admin/requests", Effect.map(Effect.flatMap(requestQuery(store), store.listRequests), (page) => HttpServerResponse.unsafeJson(page))))
      .handleRaw("getRequest", ({ path }) =>
        answer("GET /admin/requests/{id}", Effect.gen(function*() {
          const request = yield* store.getRequest(path.id)
          if (request === undefined) return yield* new RequestNotFound({ id: path.id })
          return HttpServerResponse.unsafeJson(request)
        })))
      .handleRaw("health", () =>
        Effect.succeed(HttpServerResponse.unsafeJson(deploymentHealth(config, router)))
      )
      .handleRaw("ledger", () =>
        answer("GET /admin/ledger", Effect.map(spend.status, (status) => HttpServerResponse.unsafeJson({ object: "ledger_status", pid: process.pid, ...status }))))
  }))
