/**
 * Quorum's HTTP API as an HttpApi: it validates the simple routes and is the source of
 * the OpenAPI document at /openapi.json. Chat completions are declared in the document
 * but served by a raw route (chat-completions.ts): it streams, keeps unknown fields,
 * and is the hot path, where HttpApi's per-request wrapping costs more than it gives.
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { ChatCompletionRequest } from "../protocol/chat-request"
import { ChatCompletion } from "../protocol/chat-response"
import { ErrorBody } from "../protocol/error-body"
import { ModelList } from "../protocol/models"

export const Health = Schema.Struct({
  status: Schema.Literal("ok"),
  models: Schema.Number,
  routes: Schema.Number
})

export class ChatGroup extends HttpApiGroup.make("chat").add(
  HttpApiEndpoint.post("completions", "/v1/chat/completions")
    .setPayload(ChatCompletionRequest)
    .addSuccess(ChatCompletion)
    .addError(ErrorBody, { status: 400 })
    .annotate(
      OpenApi.Description,
      "OpenAI-compatible chat completions. With `stream: true` the answer is a text/event-stream of " +
        "chat.completion.chunk objects ending in `data: [DONE]`, or in an error event if the upstream failed mid-stream. " +
        "Errors use OpenAI's shape with status 400, 404, 413, 429, 502, 503 or 504."
    )
) {}

export class ModelsGroup extends HttpApiGroup.make("models").add(
  HttpApiEndpoint.get("list", "/v1/models")
    .addSuccess(ModelList)
    .addError(ErrorBody, { status: 401 })
    .annotate(OpenApi.Description, "The models and routes the caller may use: all of them without a key, a key's own list with one.")
) {}

export class HealthGroup extends HttpApiGroup.make("health").add(
  HttpApiEndpoint.get("health", "/health").addSuccess(Health)
) {}

/** The routes HttpApi serves itself. */
export class ServedApi extends HttpApi.make("quorum").add(HealthGroup) {}

/** Everything, for the OpenAPI document (models and chat are raw routes: they check the caller's key). */
export class QuorumApi extends ServedApi.add(ModelsGroup).add(ChatGroup)
  .annotate(OpenApi.Title, "Quorum")
  .annotate(OpenApi.Description, "A self-hostable, OpenAI-compatible LLM gateway")
{}
