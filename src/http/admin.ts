/**
 * The admin API: virtual keys (create, list, show, update, revoke), spend reports and
 * the ledger writer's status. Guarded by the admin key from the environment
 * (QUORUM_ADMIN_KEY unless `auth.admin_key_env` names another); off without one.
 */
import { HttpLayerRouter, HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Redacted } from "effect"
import { timingSafeEqual, createHash } from "node:crypto"
import { GatewayConfig, type ResolvedConfig } from "../config/gateway-config"
import { CreateKey, UpdateKey } from "../spend/keys"
import { bearer, Spend } from "../spend/spend"
import { REPORT_DIMENSIONS, type ReportDimension, SpendStore } from "../spend/store"
import { AdminUnauthorized, type ClientError, errorResponse, InvalidRequest, KeyNotFound } from "./errors"
import { jsonBodyReader } from "./read-json-body"

const readCreate = jsonBodyReader(CreateKey)
const readUpdate = jsonBodyReader(UpdateKey)

const digest = (text: string) => createHash("sha256").update(text).digest()

/** Compares digests, so that neither the key's length nor its content leaks through timing. */
const checkAdmin = (config: ResolvedConfig) =>
  Effect.gen(function*() {
    const expected = config.auth.adminKey
    if (expected === undefined) {
      return yield* new AdminUnauthorized({ message: `The admin API is off: set ${config.auth.adminKeyEnv} to an admin key to turn it on.` })
    }
    const given = bearer((yield* HttpServerRequest.HttpServerRequest).headers["authorization"])
    if (given === undefined || !timingSafeEqual(digest(given), digest(Redacted.value(expected)))) {
      return yield* new AdminUnauthorized({ message: "Incorrect or missing admin key: send the admin key as Authorization: Bearer <key>." })
    }
  })

const DAY = /^\d{4}-\d{2}-\d{2}$/

const reportQuery = Effect.gen(function*() {
  const search = yield* HttpServerRequest.ParsedSearchParams
  const one = (name: string): string | undefined => {
    const value = search[name]
    return Array.isArray(value) ? value[0] : (value as string | undefined)
  }
  const groupBy = (one("group_by") ?? "key,model").split(",").map((d) => d.trim()).filter((d) => d !== "")
  for (const d of groupBy) {
    if (!(REPORT_DIMENSIONS as ReadonlyArray<string>).includes(d)) {
      return yield* new InvalidRequest({ message: `Invalid value for 'group_by': \`${d}\`; expected a comma-separated list of ${REPORT_DIMENSIONS.join(", ")}`, param: "group_by", code: "invalid_value" })
    }
  }
  const from = one("from")
  const to = one("to")
  for (const [name, value] of [["from", from], ["to", to]] as const) {
    if (value !== undefined && !DAY.test(value)) {
      return yield* new InvalidRequest({ message: `Invalid value for '${name}': expected a UTC date as YYYY-MM-DD`, param: name, code: "invalid_value" })
    }
  }
  return { groupBy: groupBy as Array<ReportDimension>, from, to, keyId: one("key") }
})

const keyId = Effect.map(HttpRouter.params, (params) => params.id ?? "")

/**
 * A key spec is checked strictly: a misspelt field (`budget` for `budget_usd`) would
 * otherwise make a key without the limit its creator meant, and a misspelt model a key
 * that can call nothing.
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
    return spec
  })

export const AdminRoutes = HttpLayerRouter.use((router) =>
  Effect.gen(function*() {
    const config = yield* GatewayConfig
    const store = yield* SpendStore
    const spend = yield* Spend
    const guarded = <R>(handler: Effect.Effect<HttpServerResponse.HttpServerResponse, ClientError, R>) =>
      Effect.zipRight(checkAdmin(config), handler).pipe(Effect.catchAll((error) => Effect.succeed(errorResponse(error))))
    const found = <A>(id: string, value: A | undefined) => (value === undefined ? Effect.fail(new KeyNotFound({ id })) : Effect.succeed(value))

    yield* router.add("POST", "/admin/keys", guarded(Effect.gen(function*() {
      const input = yield* Effect.flatMap(readCreate(config.maxBodyBytes), (spec) => checkSpec(config, spec))
      const { key, secret } = yield* store.createKey(input, Date.now())
      // The only time the key is shown.
      return HttpServerResponse.unsafeJson({ ...key, key: secret }, { status: 201 })
    })))
    yield* router.add("GET", "/admin/keys", guarded(Effect.map(store.listKeys(Date.now()), (data) => HttpServerResponse.unsafeJson({ object: "list", data }))))
    yield* router.add("GET", "/admin/keys/:id", guarded(Effect.gen(function*() {
      const id = yield* keyId
      return HttpServerResponse.unsafeJson(yield* found(id, yield* store.getKey(id, Date.now())))
    })))
    yield* router.add("PATCH", "/admin/keys/:id", guarded(Effect.gen(function*() {
      const id = yield* keyId
      const patch = yield* Effect.flatMap(readUpdate(config.maxBodyBytes), (spec) => checkSpec(config, spec))
      return HttpServerResponse.unsafeJson(yield* found(id, yield* store.updateKey(id, patch, Date.now())))
    })))
    yield* router.add("DELETE", "/admin/keys/:id", guarded(Effect.gen(function*() {
      const id = yield* keyId
      return HttpServerResponse.unsafeJson(yield* found(id, yield* store.revokeKey(id, Date.now())))
    })))
    yield* router.add("GET", "/admin/spend", guarded(Effect.gen(function*() {
      const query = yield* reportQuery
      const data = yield* store.report(query)
      const total = data.reduce((sum, row) => sum + row.cost_micros, 0)
      return HttpServerResponse.unsafeJson({
        object: "spend_report",
        group_by: query.groupBy,
        from: query.from ?? null,
        to: query.to ?? null,
        data,
        total: { cost_micros: total, cost_usd: total / 1e6, requests: data.reduce((sum, row) => sum + row.requests, 0) }
      })
    })))
    yield* router.add("GET", "/admin/ledger", guarded(Effect.map(spend.status, (status) => HttpServerResponse.unsafeJson({ object: "ledger_status", pid: process.pid, ...status }))))
  }))
