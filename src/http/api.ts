/**
 * Quorum's HTTP API as an HttpApi: the source of the OpenAPI document at /openapi.json,
 * and the server of /health and the admin API (behind the admin key's security
 * middleware, admin.ts). The gateway's own routes are declared here for the document but
 * served raw: the hot routes (chat completions, messages, responses, embeddings,
 * consensus) straight from node:http (hot-routes.ts), where HttpApi's per-request
 * wrapping costs more than it gives; the model list and evaluators through routes.ts. test/api.test.ts checks that
 * what is served and what is declared agree.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { ConsensusReport, ConsensusRequest } from "../consensus/request"
import { AnthropicErrorBody } from "../ingress/anthropic/errors"
import { MessagesRequest } from "../ingress/anthropic/wire"
import { ResponseObject } from "../ingress/responses/output"
import { ResponsesRequest } from "../ingress/responses/wire"
import { ChatCompletionRequest } from "../protocol/chat-request"
import { ChatCompletion, ChatCompletionChunk } from "../protocol/chat-response"
import { EmbeddingRequest, EmbeddingResponse } from "../protocol/embeddings"
import { ErrorBody } from "../protocol/error-body"
import { ModelList, ModelObject } from "../protocol/models"
import { CreateKey, KeyView, UpdateKey } from "../billing/keys"
import { RequestDetail, RequestPage, SpendReport } from "../billing/reports"
import { FeedbackAnswer, FeedbackBody } from "./feedback"
import { ReliabilityReport } from "./reliability"
import { RouteBeliefsReport } from "./beliefs"
import { openApiDocument } from "./openapi-document"

export const Health = Schema.Struct({
  status: Schema.Literal("ok"),
  models: Schema.Number,
  routes: Schema.Number
})

/**
 * For the document only. Handlers answer their errors themselves (errorResponse), so
 * HttpApi never encodes one of these; it must not pick one for a failure it does encode
 * either (a plain struct would match AdminKeyRefused first and answer it as a 400).
 */
const ErrorResponse = ErrorBody.pipe(Schema.filter(() => false)).annotations({ identifier: "ErrorResponse" })

/** Adds error responses in an envelope, one per status (the document says what each means). */
const failingIn = (envelope: Schema.Schema.Any) => (...statuses: ReadonlyArray<number>) =>
<E extends HttpApiEndpoint.HttpApiEndpoint.Any>(endpoint: E): E =>
  statuses.reduce<HttpApiEndpoint.HttpApiEndpoint.Any>(
    (e, status) => (e as HttpApiEndpoint.HttpApiEndpoint.AnyWithProps).addError(envelope, { status }),
    endpoint
  ) as E

/** OpenAI's envelope, as every route but Anthropic's Messages answers errors. */
const failingWith = failingIn(ErrorResponse)

/** A virtual key (`qk-…`): required where `auth.mode` is `keys`, optional on an open gateway. */
export class VirtualKey extends HttpApiMiddleware.Tag<VirtualKey>()("quorum/VirtualKey", {
  security: {
    virtualKey: HttpApiSecurity.bearer.pipe(HttpApiSecurity.annotate(
      OpenApi.Description,
      "A Quorum virtual key (qk-…), created with POST /admin/keys. Required where auth.mode is keys; optional on an open gateway."
    ))
  }
}) {}

/** The admin key's refusal (401), in OpenAI's error shape like every other error. */
export class AdminKeyRefused extends Schema.Class<AdminKeyRefused>("AdminKeyRefused")(
  { error: ErrorBody.fields.error },
  HttpApiSchema.annotations({ status: 401 })
) {}

/** The admin key from QUORUM_ADMIN_KEY (or the variable `auth.admin_key_env` names); without one the admin API is off. */
export class AdminKey extends HttpApiMiddleware.Tag<AdminKey>()("quorum/AdminKey", {
  failure: AdminKeyRefused,
  security: {
    adminKey: HttpApiSecurity.bearer.pipe(HttpApiSecurity.annotate(
      OpenApi.Description,
      "The admin key from the environment (QUORUM_ADMIN_KEY unless auth.admin_key_env names another variable)."
    ))
  }
}) {}

/** Where chat completions and consensus put what they report beside the body. */
const answerHeaders = {
  "x-request-id": { description: "The ledger's id for this request (GET /admin/requests/{id})", schema: { type: "string" } },
  "x-quorum-cost-usd": { description: "What the request cost in USD, e.g. 0.000098; for a stream, an HTTP trailer after the last event", schema: { type: "string" } },
  "x-quorum-deployment": { description: "The model that answered (chat completions)", schema: { type: "string" } },
  "x-quorum-attempts": { description: "Upstream calls made (chat completions)", schema: { type: "string" } }
}

/** The 200 response, which every operation annotated here has: each declares a success body. */
const successOf = <R>(op: { readonly responses: Record<string, R> }): R => {
  const ok = op.responses["200"]
  if (ok === undefined) throw new Error("an operation that reports an answer has no 200 response to describe")
  return ok
}

/** JSON, or with `stream: true` server-sent events, which an endpoint's single success schema cannot say. */
const streaming = OpenApi.annotations({
  transform: (operation) => {
    const op = allowAdditionalProperties(operation) as { responses: Record<string, { content?: Record<string, unknown>; headers?: unknown }> }
    const ok = successOf(op)
    ok.headers = answerHeaders
    ok.content = {
      ...ok.content,
      "text/event-stream": {
        schema: {
          type: "string",
          description: "With `stream: true`: server-sent events, each `data:` line a chat.completion.chunk " +
            "(#/components/schemas/CreateChatCompletionStreamResponse), the last one `data: [DONE]`. A stream that fails " +
            "after its first event ends with an error event, `data: {\"error\": {…}}` (ErrorResponse), and no [DONE]."
        },
        "x-event-data": {
          oneOf: [{ $ref: "#/components/schemas/CreateChatCompletionStreamResponse" }, { $ref: "#/components/schemas/ErrorResponse" }]
        }
      }
    }
    return op
  }
})

const withAnswerHeaders = OpenApi.annotations({
  transform: (operation) => {
    const op = allowAdditionalProperties(operation) as { responses: Record<string, { headers?: unknown }> }
    successOf(op).headers = answerHeaders
    return op
  }
})

/**
 * Removes every `additionalProperties: false` below a request body: chat completions pass
 * fields they do not know to OpenAI-compatible upstreams, consensus to every model.
 */
const allowAdditionalProperties = (operation: Record<string, unknown>): Record<string, unknown> => {
  const open = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(open)
    if (typeof node !== "object" || node === null) return node
    return Object.fromEntries(Object.entries(node).filter(([k, v]) => !(k === "additionalProperties" && v === false)).map(([k, v]) => [k, open(v)]))
  }
  return operation.requestBody === undefined ? operation : { ...operation, requestBody: open(operation.requestBody) }
}

export class ChatGroup extends HttpApiGroup.make("chat").add(
  HttpApiEndpoint.post("completions", "/v1/chat/completions")
    .setPayload(ChatCompletionRequest)
    .addSuccess(ChatCompletion.annotations({ identifier: "CreateChatCompletionResponse" }))
    .pipe(failingWith(400, 401, 403, 404, 413, 429, 500, 502, 503, 504))
    .annotate(OpenApi.Summary, "Chat completions, OpenAI-compatible")
    .annotate(
      OpenApi.Description,
      "OpenAI's chat completions: a JSON chat.completion, or with `stream: true` a text/event-stream of chunks " +
        "(`stream_options.include_usage` honoured). `model` is a model, a route, `consensus` or `consensus/<preset>` " +
        "(the consensus report then comes in an extra `consensus` field). Fields Quorum does not interpret are passed " +
        "unchanged to OpenAI-compatible upstreams; a field the provider cannot take is a 400 naming it."
    )
    .annotateContext(streaming)
).middleware(VirtualKey) {}

/** Anthropic's error envelope, for the document only (see ErrorResponse). */
const AnthropicErrorResponse = AnthropicErrorBody.annotations({ identifier: "AnthropicErrorResponse" }).pipe(Schema.filter(() => false))

/** What the document says of a message; the Anthropic SDK's Message type is the full shape. */
const AnthropicMessage = Schema.Struct(
  {
    id: Schema.String,
    type: Schema.Literal("message"),
    role: Schema.Literal("assistant"),
    model: Schema.String,
    content: Schema.Array(Schema.Struct({ type: Schema.String }, Schema.Record({ key: Schema.String, value: Schema.Unknown }))),
    stop_reason: Schema.NullOr(Schema.String),
    usage: Schema.Struct({ input_tokens: Schema.Number, output_tokens: Schema.Number }, Schema.Record({ key: Schema.String, value: Schema.Unknown }))
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
).annotations({ identifier: "AnthropicMessage" })

const failingAnthropicWith = failingIn(AnthropicErrorResponse)

/** Other SDKs' wire formats, translated to chat completions underneath (served raw, like chat). */
export class IngressGroup extends HttpApiGroup.make("ingress")
  .add(
    HttpApiEndpoint.post("messages", "/v1/messages")
      .setPayload(MessagesRequest)
      .addSuccess(AnthropicMessage)
      .pipe(failingAnthropicWith(400, 401, 403, 404, 413, 429, 500, 502, 503, 504))
      .annotate(OpenApi.Summary, "Anthropic's Messages API")
      .annotate(
        OpenApi.Description,
        "Anthropic's Messages API (its SDK works unchanged; the key may come as `x-api-key`), answered by the same " +
          "routing, consensus, spend and policies as chat completions. With `stream: true`, Messages stream events " +
          "(text/event-stream); a failure after the first event is an `error` event, never message_stop. Errors are in " +
          "Anthropic's envelope. What cannot travel to every provider (server tools, files by id) is a 400 naming the field."
      )
      .annotateContext(withAnswerHeaders)
  )
  .add(
    HttpApiEndpoint.post("responses", "/v1/responses")
      .setPayload(ResponsesRequest)
      .addSuccess(ResponseObject.annotations({ identifier: "Response" }))
      .pipe(failingWith(400, 401, 403, 404, 413, 429, 500, 502, 503, 504))
      .annotate(OpenApi.Summary, "OpenAI's Responses API, stateless")
      .annotate(
        OpenApi.Description,
        "OpenAI's Responses API without stored state (`store` is accepted and nothing is stored; previous_response_id, " +
          "conversation, background and hosted tools are a 400 naming the field), answered by the same routing, consensus, " +
          "spend and policies as chat completions. With `stream: true`, the Responses stream events; a failure after the " +
          "first event ends with response.failed."
      )
      .annotateContext(withAnswerHeaders)
  )
  .middleware(VirtualKey) {}

export class EmbeddingsGroup extends HttpApiGroup.make("embeddings").add(
  HttpApiEndpoint.post("create", "/v1/embeddings")
    .setPayload(EmbeddingRequest)
    .addSuccess(EmbeddingResponse.annotations({ identifier: "CreateEmbeddingResponse" }))
    .pipe(failingWith(400, 401, 403, 404, 413, 429, 500, 502, 503, 504))
    .annotate(OpenApi.Summary, "Embeddings, OpenAI-compatible")
    .annotate(
      OpenApi.Description,
      "OpenAI's embeddings, routed like a chat model (routes, fallbacks, circuits) to the deployments that serve them " +
        "(OpenAI-compatible ones, Gemini), billed by input tokens; the gateway's input policies apply to the texts."
    )
    .annotateContext(withAnswerHeaders)
).middleware(VirtualKey) {}

const consensusEndpoint = <const Name extends string, const Path extends HttpApiEndpoint.PathSegment>(name: Name, path: Path, summary: string) =>
  HttpApiEndpoint.post(name, path)
    .setPayload(ConsensusRequest)
    .addSuccess(ConsensusReport.annotations({ identifier: "ConsensusReport" }))
    .pipe(failingWith(400, 401, 403, 404, 413, 429, 500, 502, 503, 504))
    .annotate(OpenApi.Summary, summary)
    .annotate(
      OpenApi.Description,
      "Fans one request out to several models, scores the answers with evaluators and returns the answer they agree on " +
        "(always the heaviest group under the weights in force; `reached` says whether it cleared min_agreement). Fields not declared here (temperature, max_tokens, seed, …) " +
        "are sampling parameters sent to every model."
    )
    .annotateContext(withAnswerHeaders)

export class ConsensusGroup extends HttpApiGroup.make("consensus")
  .add(consensusEndpoint("run", "/v1/consensus", "Consensus across several models"))
  .add(consensusEndpoint("runUnversioned", "/consensus", "Consensus across several models (the same as /v1/consensus)"))
  .add(
    HttpApiEndpoint.get("evaluators", "/evaluators")
      .addSuccess(Schema.Struct({
        object: Schema.Literal("list"),
        data: Schema.Array(Schema.Struct({ name: Schema.String, description: Schema.String, gate: Schema.Boolean }))
      }).annotations({ identifier: "EvaluatorList" }))
      .pipe(failingWith(401, 503))
      .annotate(OpenApi.Summary, "The registered consensus evaluators")
  )
  .middleware(VirtualKey) {}

export class FeedbackGroup extends HttpApiGroup.make("feedback")
  .add(
    HttpApiEndpoint.post("feedback", "/v1/feedback")
      .setPayload(FeedbackBody)
      .addSuccess(FeedbackAnswer.annotations({ identifier: "FeedbackRecorded" }))
      .pipe(failingWith(400, 401, 404, 409, 413, 503))
      .annotate(OpenApi.Summary, "Label a consensus answer, or an answer of a learned route")
      .annotate(
        OpenApi.Description,
        "`{\"id\", \"label\"}` gives the correct final answer (normalized like the candidates' and matched to the group that gave it); " +
          "`{\"id\", \"correct\": true|false}` judges the answer returned. Only the key that made the request, or the admin key, may label it. " +
          "404 for an unknown or expired id. An answer of a route with strategy: adaptive is labelled by its request id (the x-request-id header), " +
          "with `correct` or `score` (0 to 1): once (409 after), for or against the target that answered."
      )
  )
  .middleware(VirtualKey) {}

export class ReliabilityGroup extends HttpApiGroup.make("reliability")
  .add(
    HttpApiEndpoint.get("reliability", "/v1/reliability")
      .setUrlParams(Schema.Struct({ task: Schema.optional(Schema.String.annotations({ description: "The task (default: `default`)" })) }))
      .addSuccess(ReliabilityReport.annotations({ identifier: "Reliability" }))
      .pipe(failingWith(400, 401, 503))
      .annotate(OpenApi.Summary, "What consensus learned of each model on a task, and the weights in force")
      .annotate(OpenApi.Description, "The admin key, or no key where the gateway is open.")
  )
  .middleware(AdminKey) {}

export class RoutesGroup extends HttpApiGroup.make("routes")
  .add(
    HttpApiEndpoint.get("beliefs", "/v1/routes/:name/beliefs")
      .setPath(Schema.Struct({ name: Schema.String.annotations({ description: "A route with strategy: adaptive" }) }))
      .addSuccess(RouteBeliefsReport.annotations({ identifier: "RouteBeliefs" }))
      .pipe(failingWith(401, 404, 503))
      .annotate(OpenApi.Summary, "What a learned route believes of each target")
      .annotate(
        OpenApi.Description,
        "Per target: the Beta posterior of its quality (alpha, beta, mean), its mean cost and latency, completed calls and labels counted, and its score under the route's weights; " +
          "and the share of this worker's recent calls that explored. Shared by replicas (the database's beliefs). The admin key, or a key that may use the route."
      )
  )
  .middleware(VirtualKey) {}

export class ModelsGroup extends HttpApiGroup.make("models")
  .add(
    HttpApiEndpoint.get("list", "/v1/models")
      .addSuccess(ModelList.annotations({ identifier: "ListModelsResponse" }))
      .pipe(failingWith(401, 503))
      .annotate(OpenApi.Summary, "Models and routes")
      .annotate(OpenApi.Description, "The models and routes the caller may use: all of them without a key on an open gateway, a key's own list with one.")
  )
  .add(
    HttpApiEndpoint.get("retrieve", "/v1/models/:id")
      .setPath(Schema.Struct({
        id: Schema.String.annotations({ description: "A model, route, `consensus` or `consensus/<preset>` id; a slash may be sent as it is or as %2F" })
      }))
      .addSuccess(ModelObject.annotations({ identifier: "Model" }))
      .pipe(failingWith(401, 404, 503))
      .annotate(OpenApi.Summary, "One model")
      .annotate(OpenApi.Description, "A model or route the caller may use; one its key may not use is a 404, as an unknown one.")
  )
  .middleware(VirtualKey) {}

export class HealthGroup extends HttpApiGroup.make("health").add(
  HttpApiEndpoint.get("health", "/health").addSuccess(Health).annotate(OpenApi.Summary, "Liveness, with the number of models and routes")
) {}

export class DocsGroup extends HttpApiGroup.make("docs").add(
  HttpApiEndpoint.get("openapi", "/openapi.json")
    .addSuccess(Schema.Record({ key: Schema.String, value: Schema.Unknown }).annotations({ description: "This document" }))
    .annotate(OpenApi.Summary, "This OpenAPI document")
) {}

/**
 * A query parameter as HttpApi passes it on: a string, or several if repeated. The
 * handler reads and checks them itself (admin.ts), so that a bad one is a 400 in OpenAI's
 * shape naming it; the document shows the one string a caller should send.
 */
const Query = (description: string) =>
  Schema.optional(Schema.Union(Schema.String, Schema.Array(Schema.String)).annotations({ jsonSchema: { type: "string", description } }))

const KeyId = Schema.Struct({ id: Schema.String.annotations({ description: "A key's id (key_…)" }) })
const Key = KeyView.annotations({ identifier: "Key" })

const Percentiles = Schema.Struct({ p50: Schema.NullOr(Schema.Number), p90: Schema.NullOr(Schema.Number), p99: Schema.NullOr(Schema.Number) })

export const DeploymentHealthReport = Schema.Struct({
  object: Schema.Literal("deployment_health"),
  pid: Schema.Number,
  workers: Schema.Number,
  data: Schema.Array(Schema.Struct({
    model: Schema.String,
    provider: Schema.String,
    circuit: Schema.Literal("closed", "open", "probing"),
    in_flight: Schema.Number,
    error_rate: Schema.Number,
    latency_ms: Percentiles,
    first_token_ms: Percentiles
  }))
})

export class AdminGroup extends HttpApiGroup.make("admin")
  .add(
    HttpApiEndpoint.post("createKey", "/admin/keys")
      .setPayload(CreateKey)
      .addSuccess(Schema.Struct({ ...KeyView.fields, key: Schema.String.annotations({ description: "The key itself, shown only here" }) }), { status: 201 })
      .pipe(failingWith(400, 401, 413, 503))
      .annotate(OpenApi.Summary, "Create a virtual key")
      .annotate(OpenApi.Description, "An unknown field or model name is a 400 naming it. The key is in `key`, and only in this answer.")
  )
  .add(
    HttpApiEndpoint.get("listKeys", "/admin/keys")
      .addSuccess(Schema.Struct({ object: Schema.Literal("list"), data: Schema.Array(Key) }))
      .pipe(failingWith(401, 503))
      .annotate(OpenApi.Summary, "Virtual keys, with their limits and what their period spent")
  )
  .add(HttpApiEndpoint.get("getKey", "/admin/keys/:id").setPath(KeyId).addSuccess(Key).pipe(failingWith(401, 404, 503)).annotate(OpenApi.Summary, "One key"))
  .add(
    HttpApiEndpoint.patch("updateKey", "/admin/keys/:id")
      .setPath(KeyId)
      .setPayload(UpdateKey)
      .addSuccess(Key)
      .pipe(failingWith(400, 401, 404, 413, 503))
      .annotate(OpenApi.Summary, "Change a key: any field; null removes a limit")
  )
  .add(
    HttpApiEndpoint.del("revokeKey", "/admin/keys/:id").setPath(KeyId).addSuccess(Key).pipe(failingWith(401, 404, 503))
      .annotate(OpenApi.Summary, "Revoke a key, at once, on every worker and replica")
  )
  .add(
    HttpApiEndpoint.get("spend", "/admin/spend")
      .setUrlParams(Schema.Struct({
        group_by: Query("Comma-separated: key, model, provider, day (default key,model); empty for one total"),
        from: Query("From this UTC date (YYYY-MM-DD), inclusive"),
        to: Query("Until this UTC date (YYYY-MM-DD), inclusive"),
        key: Query("Only this key's requests (its id)")
      }))
      .addSuccess(SpendReport.annotations({ identifier: "SpendReport" }))
      .pipe(failingWith(400, 401, 503))
      .annotate(OpenApi.Summary, "Spend report from the ledger")
      .annotate(
        OpenApi.Description,
        "Per group: requests, how they were answered (by_status; succeeded, refused, failed, cancelled), upstream attempts, " +
          "tokens and cost. A request that called no upstream (refused by a key's limits, invalid) is grouped under the model " +
          "it asked for, with no provider. An unknown or repeated parameter is a 400 naming it."
      )
  )
  .add(
    HttpApiEndpoint.get("listRequests", "/admin/requests")
      .setUrlParams(Schema.Struct({
        key: Query("A key's id"),
        model: Query("The model asked for, or one called for the request"),
        status: Query("An HTTP status (429) or a class (2xx, 4xx, 5xx)"),
        from: Query("From this moment, inclusive: a UTC date (its start) or an ISO timestamp (UTC unless it has an offset)"),
        to: Query("Until this moment, exclusive: an ISO timestamp, or a UTC date, which includes that whole day"),
        limit: Query("Requests per page, 1 to 500 (default 50)"),
        after: Query("A request id: the page after it (next_after of the previous page)")
      }))
      .addSuccess(RequestPage.annotations({ identifier: "RequestPage" }))
      .pipe(failingWith(400, 401, 503))
      .annotate(OpenApi.Summary, "Requests in the ledger, newest first")
  )
  .add(
    HttpApiEndpoint.get("getRequest", "/admin/requests/:id")
      .setPath(Schema.Struct({ id: Schema.String.annotations({ description: "A request's x-request-id" }) }))
      .addSuccess(RequestDetail.annotations({ identifier: "Request" }))
      .pipe(failingWith(401, 404, 503))
      .annotate(OpenApi.Summary, "One request, with its upstream attempts")
  )
  .add(
    HttpApiEndpoint.get("ledger", "/admin/ledger")
      .addSuccess(Schema.Struct({
        object: Schema.Literal("ledger_status"),
        pid: Schema.Number,
        pending: Schema.Number.annotations({ description: "Rows waiting for their batch" }),
        written: Schema.Number.annotations({ description: "Requests whose rows this process committed" }),
        failed_batches: Schema.Number,
        dropped: Schema.Number
      }))
      .pipe(failingWith(401))
      .annotate(OpenApi.Summary, "This process's ledger writer")
  )
  .add(
    HttpApiEndpoint.get("health", "/admin/health")
      .addSuccess(DeploymentHealthReport.annotations({ identifier: "DeploymentHealth" }))
      .pipe(failingWith(401))
      .annotate(OpenApi.Summary, "Live health of each deployment, as this worker sees it")
      .annotate(OpenApi.Description, "Per deployment: its circuit, calls awaiting an answer (or a stream's first token), the share of recent calls that failed, and percentiles of recent latency (whole answers) and time to first token (streams), over the last 256 calls of each kind.")
  )
  .middleware(AdminKey) {}

/** The routes HttpApi serves itself. */
export class ServedApi extends HttpApi.make("quorum").add(HealthGroup).add(AdminGroup) {}

/** Everything, for the OpenAPI document. */
export class QuorumApi extends ServedApi.add(ChatGroup).add(IngressGroup).add(EmbeddingsGroup).add(ConsensusGroup).add(FeedbackGroup).add(ReliabilityGroup).add(RoutesGroup).add(ModelsGroup).add(DocsGroup)
  .annotate(OpenApi.Title, "Quorum")
  .annotate(OpenApi.Version, "0.1.0")
  .annotate(OpenApi.Description, "A self-hostable, OpenAI-compatible LLM gateway. Every error has OpenAI's shape, {\"error\": {message, type, param, code}}.")
  .annotate(HttpApi.AdditionalSchemas, [ChatCompletionChunk.annotations({ identifier: "CreateChatCompletionStreamResponse" })])
  .annotateContext(OpenApi.annotations({ transform: openApiDocument }))
{}
