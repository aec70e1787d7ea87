/**
 * How long one upstream call may take. A non-stream call shows no sign of life until its
 * answer, so its bound follows the output it may write: first_token_ms plus that many
 * tokens at min_tokens_per_second, under total_ms. A hung upstream is then given up in
 * seconds when the request bounds its output (max_tokens, or the model's documented
 * ceiling), while a long generation keeps the time it needs. The request's retry budget
 * cuts a call still running when it runs out (a stream's only until its first chunk).
 */
import type { Deployment } from "../config/gateway-config"
import { type ChatCompletionRequest, maxOutputTokens } from "../protocol/chat-request"
import type { CallDeadline } from "../providers/provider"

export const callDeadline = (deployment: Deployment, request: ChatCompletionRequest): CallDeadline => {
  const { totalMs, firstTokenMs, minTokensPerSecond } = deployment.timeouts
  const output = maxOutputTokens(request) ?? deployment.maxOutputTokens
  if (output === undefined) return { ms: totalMs, setting: "total_ms" }
  const paced = firstTokenMs + Math.ceil((output * 1000) / minTokensPerSecond)
  return paced < totalMs
    ? { ms: paced, setting: `first_token_ms + ${output} output tokens at min_tokens_per_second` }
    : { ms: totalMs, setting: "total_ms" }
}

/** The same, cut to what is left of the request's budget. */
export const withinBudget = (deadline: CallDeadline, budgetLeftMs: number): CallDeadline =>
  budgetLeftMs < deadline.ms ? { ms: Math.max(1, budgetLeftMs), setting: "retry.budget_ms" } : deadline

/** A call whose whole answer comes at once and is short (embeddings): as long as a first token may take. */
export const answerDeadline = (deployment: Deployment): CallDeadline => {
  const { totalMs, firstTokenMs } = deployment.timeouts
  return firstTokenMs < totalMs ? { ms: firstTokenMs, setting: "first_token_ms" } : { ms: totalMs, setting: "total_ms" }
}
