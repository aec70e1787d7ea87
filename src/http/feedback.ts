/**
 * POST /v1/feedback: a label for a consensus answer, `{"id", "label"}` (the correct final
 * answer, normalized like the candidates' and matched to the group that gave it) or
 * `{"id", "correct": true|false}` about the answer returned. Only the key that made the
 * request, or the admin key, may label it; on an open gateway a request made without a
 * key is labelled without one.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Redacted, Schema } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"
import type { ResolvedConfig } from "../config/gateway-config"
import { groupOfLabel } from "../consensus/label"
import type { Learning } from "../consensus/learning/live"
import { canonicalJson } from "../consensus/normalize"
import { KEY_PREFIX } from "../spend/keys"
import type { Spend } from "../spend/spend"
import { bearer } from "../spend/spend"
import { answeringDefects, errorResponse, InvalidRequest } from "./errors"
import { jsonBodyReader } from "./read-json-body"

export const FeedbackBody = Schema.Struct({
  id: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)).annotations({ description: "The id of a consensus response, or of a chat completion with model consensus" }),
  label: Schema.optional(Schema.Unknown.annotations({ description: "The correct final answer: a bare value (\"C\", \"18\", \"[1, 2]\"), a JSON value, or text as a model would write it" })),
  correct: Schema.optional(Schema.Boolean.annotations({ description: "Instead of `label`: whether the answer returned was right" }))
})

export const FeedbackAnswer = Schema.Struct({
  id: Schema.String,
  recorded: Schema.Literal(true),
  /** Candidates whose answer the label now judges (calls cancelled unanswered are not). */
  candidates_labelled: Schema.Int
})

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

/** The label as text: a string as given, any other JSON value as canonical JSON. */
const labelText = (label: unknown): string | undefined => {
  if (typeof label === "string") return label.trim() === "" ? undefined : label
  if (label === null || label === undefined) return undefined
  return canonicalJson(label)
}

export const makeFeedbackHandler = (config: ResolvedConfig, learning: Learning, spend: Spend) =>
  answeringDefects(
    "/v1/feedback",
    Effect.gen(function*() {
      const body = yield* readFeedback(config)
      if ((body.label === undefined) === (body.correct === undefined)) {
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
