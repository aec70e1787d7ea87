/**
 * One consensus request's answers as they arrive: what each candidate said, and which of
 * them count as votes at this moment. The fan-out (fan-out.ts), the decision and the
 * report all read it, so they agree on what a vote is: an answer that passed the gates,
 * did not abstain alone (a refusal, cut at max_tokens), is not free text among answers of
 * another kind (abstain.ts), and is of a kind the task's right answers take, once labels
 * have taught that (learning/kinds.ts).
 */
import type { ToolCall } from "../protocol/chat-request"
import type { Usage } from "../protocol/chat-response"
import { abstainsByKind } from "./abstain"
import type { Policy } from "./learning/policy"
import { normalize, normalizeToolCalls, type Normalized } from "./normalize"
import type { ConsensusRequest } from "./request"
import { type Ballot, group } from "./vote"

export interface Arrival {
  status: "ok" | "error" | "cancelled"
  /** The text; for tool calls, their canonical JSON (what evaluators read). */
  content?: string
  toolCalls?: ReadonlyArray<ToolCall>
  usage?: Usage
  /** What the answering call cost, from its usage (used when no meter records the attempts). */
  answerMicroUsd?: number
  latencyMs?: number
  error?: string
  /** Why it casts no vote though it answered (a refusal, cut at max_tokens). */
  abstained?: string
  /** Excluded by a gate evaluator; `gateFailures` says which and why. */
  gated: boolean
  gateFailures: Array<string>
  scores: Record<string, number>
}

/** An answer that passed its gates: it has content (tool calls as canonical JSON). */
export type Answered = Arrival & { readonly status: "ok"; readonly content: string }

export const isAnswered = (arrival: Arrival | undefined): arrival is Answered => arrival?.status === "ok" && arrival.content !== undefined

/** The item at a candidate index; callers only hold indices of the round's models, so absence is a bug, named. */
export const candidateAt = <A>(list: ReadonlyArray<A>, i: number): A => {
  const item = list[i]
  if (item === undefined) throw new Error(`no candidate ${i} among ${list.length}`)
  return item
}

export class Round {
  /** By candidate index; undefined until its call ends (or for a model a cascade never called). */
  readonly arrivals: Array<Arrival | undefined>
  /** Set once no further call will start or answer: out-of-kind answers may then vote. */
  callsOver = false

  constructor(
    readonly models: ReadonlyArray<string>,
    private readonly strategy: ConsensusRequest["strategy"],
    private readonly policy: Policy
  ) {
    this.arrivals = models.map(() => undefined)
  }

  modelOf(i: number): string {
    return candidateAt(this.models, i)
  }

  weightOf(i: number): number {
    return this.policy.weightOf(this.modelOf(i))
  }

  normalizedOf(arrival: Answered): Normalized {
    if (arrival.toolCalls !== undefined) return normalizeToolCalls(arrival.toolCalls)
    return this.strategy === "similarity" ? { kind: "text", key: arrival.content.replace(/\s+/g, " ").trim().toLowerCase() } : normalize(arrival.content)
  }

  ballotOf(i: number): Ballot {
    return { id: String(i), answer: this.normalizedOf(this.answered(i)), weight: this.weightOf(i) }
  }

  /** The arrival at `i`, known to be an answer (the callers pick indices that are). */
  answered(i: number): Answered {
    const arrival = this.arrivals[i]
    if (!isAnswered(arrival)) throw new Error(`candidate ${i} has no answer`)
    return arrival
  }

  /** How the call at `i` ended, known to have ended (once the calls are over, every called candidate has). */
  ended(i: number): Arrival {
    const arrival = this.arrivals[i]
    if (arrival === undefined) throw new Error(`candidate ${i} has not ended`)
    return arrival
  }

  /** An answer of a kind the task's right answers never take (learned): no final answer. */
  outOfKind(answer: Normalized): boolean {
    const kinds = this.policy.answerKinds
    return kinds !== undefined && !kinds.has(answer.kind)
  }

  /** The ballots cast so far: answers that passed the gates, abstentions left out. */
  votes(): ReadonlyArray<Ballot> {
    const valid = this.arrivals.flatMap((a, k) => (isAnswered(a) && !a.gated && a.abstained === undefined ? [this.ballotOf(k)] : []))
    const voting = valid.filter((b) => abstainsByKind(b.answer, valid.map((v) => v.answer)) === undefined)
    const inKind = voting.filter((b) => !this.outOfKind(b.answer))
    // Out-of-kind answers wait as abstentions while a model may still answer in kind; once
    // no more calls will come and none did, the task's form has changed: they vote.
    return inKind.length > 0 || !this.callsOver ? inKind : voting
  }

  /** What the answers so far look like to the policy: model → group key, null for an abstention. */
  observed(): Map<string, string | null> {
    const seen = new Map<string, string | null>()
    for (const [k, model] of this.models.entries()) {
      const a = this.arrivals[k]
      if (a !== undefined && a.status !== "cancelled") seen.set(model, null)
    }
    for (const g of group(this.votes())) for (const member of g.members) seen.set(this.modelOf(Number(member)), g.key)
    return seen
  }

  /** The weight of the candidates still to answer. */
  pendingWeight(): number {
    return this.models.reduce((sum, _, k) => (this.arrivals[k] === undefined ? sum + this.weightOf(k) : sum), 0)
  }

  /** Why an answer that passed its gates cast no vote (undefined: it voted). */
  abstentionOf(i: number, voted: ReadonlySet<number>): string | undefined {
    const a = this.arrivals[i]
    if (!isAnswered(a) || a.gated) return undefined
    if (a.abstained !== undefined || voted.has(i)) return a.abstained
    const kinds = this.policy.answerKinds
    return kinds !== undefined && this.outOfKind(this.normalizedOf(a))
      ? `no answer of the kind this task's right answers take (${[...kinds].join(", ")})`
      : "no final answer of the kind the others give"
  }
}
