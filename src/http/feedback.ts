/**
 * POST /v1/feedback: a label for a consensus answer, `{"id", "label"}` (the correct final
 * answer, normalized like the candidates' and matched to the group that gave it) or
 * `{"id", "correct": true|false}` about the answer returned; or for an answer of a
 * learned route (strategy: adaptive), by the request id it was given (`x-request-id`),
 * `{"id", "correct"}` or `{"id", "score": 0..1}`, which counts once for or against the
 * target that answered. Only the key that made the request, or the admin key, may label
 * it; on an open gateway a request made without a key is labelled without one.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Redacted, Schema } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"
import type { ResolvedConfig } from "../config/gateway-config"
import { groupOfLabel } from "../consensus/label"
import type { Learning } from "../consensus/learning/live"
import { canonicalJson } from "../consensus/normalize"
import { KEY_PREFIX } from "../billing/keys"
import type { Spend } from "../billing/spend"
import { bearer } from "../billing/spend"
import type { BeliefStore } from "../routing/learned/store"
import { answeringDefects, errorResponse, InvalidRequest } from "./errors"
import { jsonBodyReader } from "./read-json-body"

export const FeedbackBody = Schema.Struct({
  id: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)).annotations({
    description: "The id of a consensus response, or of a chat completion with model consensus; or the request id (x-request-id header) of an answer of a route with strategy: adaptive"
  }),
  label: Schema.optional(Schema.Unknown.annotations({ description: "The correct final answer: a bare value (\"C\", \"18\", \"[1, 2]\"), a JSON value, or text as a model would write it" })),
  correct: Schema.optional(Schema.Boolean.annotations({ description: "Instead of `label`: whether the answer returned was right" })),
  score: Schema.optional(Schema.Number.pipe(Schema.between(0, 1)).annotations({ description: "For a learned route's answer, instead of `correct`: its quality, 0 (bad) to 1 (good)" }))
})

export const FeedbackAnswer = Schema.Struct({
  id: Schema.String,
  recorded: Schema.Literal(true),
  /** Consensus: candidates whose answer the label now judges (calls cancelled unanswered are not). */
  candidates_labelled: Schema.optional(Schema.Int),
  /** A learned route's answer: the route, and the target whose belief the label moved. */
  route: Schema.optional(Schema.String),
  target: Schema.optional(Schema.String)
})

/** The request ids the gateway answers with (x-request-id): a learned route's answers are labelled by them. */
const ROUTED_ID = /^req-/

const readFeedback = jsonBodyReader(FeedbackBody)

const digest = (text: string) => createHash("sha256").update(text).digest()

/** Whether the header carries the admin key (digests compared: no timing leak). */
export const isAdmin = (config: ResolvedConfig, authorization: string | undefined): boolean => {
  const expected = config.auth.adminKey
  const given = bearer(authorization)
  return expected !== undefined && given !== undefined && timingSafeEqual(digest(given), digest(Redacted.value(expected)))
}

const invalid = (param: string, message: string) => new InvalidRequest({ message, param, code: "invalid_value" })

const notFound = (id: string) =>
  HttpServerResponse.unsafeJson(
    { error: { message: `No consensus with id \`${id}\` to label: unknown, expired (consensus.learning.retention_days), or made by another key`, type: "invalid_request_error", param: "id", code: "consensus_not_found" } },
    { status: 404 }
  )

const routedError = (status: number, code: string, message: string) =>
  HttpServerResponse.unsafeJson({ error: { message, type: "invalid_request_error", param: "id", code } }, { status })

/** The ledger writes a request's row within flush_ms of its answer: a label sent at once waits for it, briefly. */
const onceWritten = <A, E>(config: ResolvedConfig, find: Effect.Effect<A | undefined, E>): Effect.Effect<A | undefined, E> => {
  const until = Date.now() + config.spend.flushMs + 2_000
  const attempt: Effect.Effect<A | undefined, E> = Effect.flatMap(find, (found) =>
    found !== undefined || Date.now() >= until ? Effect.succeed(found) : Effect.zipRight(Effect.sleep("25 millis"), Effect.suspend(() => attempt)))
  return attempt
}

/** A label for a learned route's answer: once, for or against the target that answered. */
const routedFeedback = (config: ResolvedConfig, beliefs: BeliefStore, id: string, quality: number, caller: string | null | "admin") =>
  Effect.gen(function*() {
    const answer = yield* onceWritten(config, beliefs.answerOf(id))
    if (answer === undefined || (caller !== "admin" && answer.keyId !== caller)) {
      return routedError(404, "request_not_found", `No request with id \`${id}\` to label: unknown, not yet written to the ledger, or made by another key`)
    }
    if (answer.route === null || !beliefs.learned.has(answer.route)) {
      return routedError(400, "route_not_learned", `Request \`${id}\` asked for \`${answer.route ?? "nothing"}\`, which is not a route with strategy: adaptive: no belief learns from its feedback`)
    }
    if (answer.target === undefined) return routedError(400, "request_not_answered", `Request \`${id}\` was not answered by any target: there is no answer to judge`)
    const recorded = yield* beliefs.label({ ...answer, route: answer.route, target: answer.target }, quality)
    if (!recorded) return routedError(409, "already_labelled", `Request \`${id}\` was labelled before: an answer counts once`)
    return HttpServerResponse.unsafeJson({ id, recorded: true, route: answer.route, target: answer.target })
  })

/** The label as text: a string as given, any other JSON value as canonical JSON. */
const labelText = (label: unknown): string | undefined => {
  if (typeof label === "string") return label.trim() === "" ? undefined : label
  if (label === null || label === undefined) return undefined
  return canonicalJson(label)
}

export const makeFeedbackHandler = (config: ResolvedConfig, learning: Learning, spend: Spend, beliefs: BeliefStore) =>
  answeringDefects(
    "/v1/feedback",
    Effect.gen(function*() {
      const body = yield* readFeedback(config)
      const routed = ROUTED_ID.test(body.id)
      if (body.score !== undefined && (body.label !== undefined || body.correct !== undefined)) {
        return yield* invalid("score", "Give one of `label`, `correct` or `score`, not several")
      }
      if (body.score !== undefined && !routed) return yield* invalid("score", "`score` judges an answer of a learned route (its x-request-id); label a consensus with `label` or `correct`")
      if (routed && body.label !== undefined) return yield* invalid("label", "An answer of a learned route is judged by `correct` (true or false) or `score` (0 to 1), not `label`")
      if (body.score === undefined && (body.label === undefined) === (body.correct === undefined)) {
        return yield* invalid(body.label === undefined ? "label" : "correct", "Give either `label` (the correct final answer) or `correct` (true or false, about the answer returned), not both")
      }
      const label = body.label === undefined ? undefined : labelText(body.label)
      if (body.label !== undefined && label === undefined) return yield* invalid("label", "`label` must be the correct answer: a non-empty string or a JSON value")
      const authorization = (yield* HttpServerRequest.HttpServerRequest).headers["authorization"]
      let caller: string | null | "admin" = "admin"
      if (!isAdmin(config, authorization)) {
        // Refuses as any other request would: a missing key where keys are required, a wrong or revoked one.
        yield* spend.caller(authorization)
        const secret = bearer(authorization)
        caller = secret !== undefined && secret.startsWith(KEY_PREFIX) ? (yield* learning.keyIdOf(secret)) ?? null : null
      }
      if (routed) return yield* routedFeedback(config, beliefs, body.id, body.score ?? (body.correct === true ? 1 : 0), caller)
      yield* learning.written(body.id)
      const outcome = yield* learning.find(body.id)
      if (outcome === undefined || (caller !== "admin" && outcome.keyId !== caller)) return notFound(body.id)
      const truth = label !== undefined ? groupOfLabel(label, outcome.candidates) : body.correct === true ? outcome.answerGroup : null
      yield* learning.label(outcome.id, outcome.task, label ?? (body.correct === true ? "correct" : "incorrect"), truth)
      return HttpServerResponse.unsafeJson({
        id: outcome.id,
        recorded: true,
        candidates_labelled: outcome.candidates.filter((c) => c.status !== "cancelled").length
      })
    }).pipe(Effect.catchAll((error) => Effect.succeed(errorResponse(error))))
  )
