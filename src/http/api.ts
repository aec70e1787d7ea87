/**
 * Quorum's HTTP API as an HttpApi: it validates the simple routes and is the source of
 * the OpenAPI document at /openapi.json. Chat completions are declared here for the
 * document and served raw (see chat-completions.ts).
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
  HttpApiEndpoint.get("list", "/v1/models").addSuccess(ModelList)
) {}

export class HealthGroup extends HttpApiGroup.make("health").add(
  HttpApiEndpoint.get("health", "/health").addSuccess(Health)
) {}

export class QuorumApi extends HttpApi.make("quorum")
  .add(ChatGroup)
  .add(ModelsGroup)
  .add(HealthGroup)
  .annotate(OpenApi.Title, "Quorum")
  .annotate(OpenApi.Description, "A self-hostable, OpenAI-compatible LLM gateway")
{}
