/**
 * Which candidates abstain: those with no answer of the kind the others give. An
 * abstention casts no vote and changes nothing for the others; in particular a long
 * prose reply among numbers or letters does not turn the vote into free-text similarity.
 */
import type { Normalized } from "./normalize"

/** Why a reply is no answer at all, whatever the others said (undefined: it may vote). */
export const abstainsAlone = (reply: { readonly finishReason: string | null | undefined; readonly refusal: string | null | undefined }): string | undefined => {
  if (reply.refusal !== null && reply.refusal !== undefined && reply.refusal !== "") return "refused"
  if (reply.finishReason === "length") return "cut at max_tokens (finish_reason: length)"
  if (reply.finishReason === "content_filter") return "stopped by the provider's content filter"
  return undefined
}

/**
 * Free text among answers of another kind (a number, a letter, JSON, …) is no final
 * answer: it abstains. Free text votes (by similarity) only where every answer is free text.
 */
export const abstainsByKind = (answer: Normalized, all: ReadonlyArray<Normalized>): string | undefined =>
  answer.kind === "text" && all.some((a) => a.kind !== "text") ? "no final answer of the kind the others give" : undefined
