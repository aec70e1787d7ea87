/**
 * The kinds of answer a task's right answers take (a number for arithmetic, code or JSON
 * for a program's output, a letter for multiple choice), learned from its labels.
 *
 * Why: "no answer of the kind the others give" abstains a prose reply among numbers, but a
 * cascade often asks one model alone, and then there are no others. Once labels show what
 * a right answer looks like on the task, a reply of another kind ("I am not sure what this
 * returns", a refusal in prose) is no final answer even when it is the only one so far: it
 * abstains, and the cascade asks the next model instead of taking it as decisive.
 */

/** A kind counts as the task's when at least this share of its right answers took it. */
const MIN_SHARE = 0.01

/** What the learner reads of one labelled consensus: each candidate's answer kind and group. */
export interface KindedOutcome {
  readonly truth: string | null
  readonly candidates: ReadonlyArray<{ readonly kind: string | null; readonly group: string | null }>
}

/**
 * The kinds of the right answers in the history (those of at least 1 % of them), or
 * undefined when no answer was ever right (nothing is known: every kind may vote).
 */
export const answerKinds = (history: ReadonlyArray<KindedOutcome>): ReadonlyArray<string> | undefined => {
  const counts = new Map<string, number>()
  let right = 0
  for (const item of history) {
    if (item.truth === null) continue
    const kind = item.candidates.find((c) => c.group === item.truth && c.kind !== null)?.kind
    if (kind === undefined || kind === null) continue
    right += 1
    counts.set(kind, (counts.get(kind) ?? 0) + 1)
  }
  if (right === 0) return undefined
  return [...counts].filter(([, n]) => n >= Math.max(1, MIN_SHARE * right)).map(([kind]) => kind).sort()
}
