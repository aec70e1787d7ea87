/**
 * What one client request cost, attempt by attempt, as the router makes the calls. The
 * request's Ticket (ticket.ts) is its meter, so the router, the consensus fan-out (forked
 * fibers inherit it) and LLM-judge evaluators all record into the request that caused them.
 */
import type { Deployment } from "../config/gateway-config"
import type { ChatCompletionRequest } from "../protocol/chat-request"
import type { ChatCompletionChunk, Usage } from "../protocol/chat-response"
import type { UpstreamError } from "../providers/upstream-error"
import { countTokens, promptTokensOf } from "../protocol/tokens"

export class AttemptRecord {
  status: "open" | "ok" | "error" | "cancelled" = "open"
  errorKind: string | undefined = undefined
  httpStatus: number | undefined = undefined
  usage: Usage | undefined = undefined
  latencyMs = 0
  readonly startedAt = Date.now()
  private readonly t0 = performance.now()
  /** Streamed text and tool calls, kept only to estimate the output of a stream that ends without usage. */
  private readonly streamed: Array<string> = []

  constructor(readonly deployment: Deployment, readonly request: ChatCompletionRequest) {}

  observe(chunk: ChatCompletionChunk): void {
    if (chunk.usage != null) this.usage = chunk.usage
    for (const { delta } of chunk.choices) {
      if (typeof delta.content === "string") this.streamed.push(delta.content)
      if (delta.tool_calls !== undefined) for (const call of delta.tool_calls) this.streamed.push((call.function?.name ?? "") + (call.function?.arguments ?? ""))
    }
  }

  /** Records the outcome once; later calls (a stream's finaliser after its error) change nothing. */
  end(status: "ok" | "error" | "cancelled", details?: { usage?: Usage | undefined; error?: UpstreamError }): void {
    if (this.status !== "open") return
    this.status = status
    this.latencyMs = Math.round((performance.now() - this.t0) * 10) / 10
    if (details?.usage !== undefined) this.usage = details.usage
    if (details?.error !== undefined) {
      this.errorKind = details.error.kind
      this.httpStatus = details.error.status
    }
  }

  /**
   * Tokens to bill: the provider's count when it gave one. Without it (a stream cut or
   * cancelled before its usage chunk) the prompt is counted here and the output is what
   * was streamed; an attempt that failed before any output cost nothing.
   */
  tokens(): { readonly usage: Usage; readonly estimated: boolean } {
    if (this.usage !== undefined) return { usage: this.usage, estimated: false }
    if (this.status === "error" && this.streamed.length === 0) {
      return { usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }, estimated: false }
    }
    const prompt = promptTokensOf(this.request)
    const output = this.streamed.length === 0 ? 0 : countTokens(this.streamed.join(""))
    return { usage: { prompt_tokens: prompt, completion_tokens: output, total_tokens: prompt + output }, estimated: true }
  }
}

export class Meter {
  readonly attempts: Array<AttemptRecord> = []
  consensusId: string | undefined = undefined

  begin(deployment: Deployment, request: ChatCompletionRequest): AttemptRecord {
    const record = new AttemptRecord(deployment, request)
    this.attempts.push(record)
    return record
  }
}
