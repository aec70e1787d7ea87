/**
 * The contract between what consensus learns from labelled outcomes (learn.ts, pure and
 * testable offline) and the engine that applies it to live requests (who to call first,
 * when to stop calling, how much each vote weighs). The engine never looks inside a
 * policy; the learner never touches HTTP, the database or the clock.
 */

/**
 * One labelled consensus, as the learner sees it: what each model called for the request
 * answered, reduced to the key of the group its answer fell in (answers in one group share
 * a key), or null when it abstained (no final answer, a refusal, `finish_reason: length`,
 * an error). `truth` is the key of the group the label matched, or null when no model gave
 * the labelled answer. Models not called for the item are absent.
 */
export interface LabelledVote {
  readonly answers: ReadonlyMap<string, string | null>
  readonly truth: string | null
}

/** What the labelled history says of one model on one task. */
export interface ModelRecord {
  readonly model: string
  /** Labelled items it was called on. */
  readonly labelled: number
  /** Of those, items where it gave an answer (did not abstain). */
  readonly answered: number
  /** Of the answered ones, how many were right. */
  readonly correct: number
}

/** What answers so far look like to a policy: model → group key, null (abstained); uncalled models absent. */
export type Observed = ReadonlyMap<string, string | null>

/** A learned (or configured) way of running consensus on one task. */
export interface Policy {
  /** Where the weights come from, for `/v1/reliability` and the report. */
  readonly rule: "config" | "learned"
  /** Labelled items it was learned from (0 for config). */
  readonly labels: number
  /** The vote weight of each model the rule knows (learned, or given in config). */
  readonly weights: ReadonlyMap<string, number>
  /** Any model's vote weight: `weights`', else what the rule gives a model it does not know. */
  weightOf(model: string): number
  readonly records: ReadonlyArray<ModelRecord>
  /**
   * The kinds of answer the task's right answers take (learned, see kinds.ts); an answer of
   * another kind abstains while a model may still answer in kind. Undefined: any kind votes.
   */
  readonly answerKinds?: ReadonlySet<string> | undefined
  /**
   * The models to call next, given the candidates of the request (most reliable first)
   * and the answers observed so far: an empty list means the answer is settled and no
   * further call is worth making.
   */
  next(candidates: ReadonlyArray<string>, observed: Observed): ReadonlyArray<string>
}
