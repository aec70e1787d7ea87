/** What a consensus keeps for feedback and learning: each candidate's model and the group its answer fell in. */
export interface CandidateOutcome {
  readonly model: string
  readonly status: "ok" | "error" | "cancelled"
  /** Its own normalized answer (kind and key), null when it gave none that passed the gates. */
  readonly kind: string | null
  readonly answer: string | null
  /** The key of the group it voted with; null when it abstained, failed or was cancelled. */
  readonly group: string | null
  readonly latencyMs: number | null
  readonly costMicros: number
}

export interface ConsensusOutcome {
  readonly id: string
  readonly task: string
  /** The returned answer's group key (null when no candidate voted). */
  readonly answerGroup: string | null
  readonly candidates: ReadonlyArray<CandidateOutcome>
}
