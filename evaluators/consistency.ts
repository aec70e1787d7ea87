/**
 * consistency: how much each candidate agrees with the others. Answers that normalize
 * to a number, JSON, a choice, code or a short phrase agree or not (never "80 % alike":
 * "100" and "1000" are different answers); free text is compared by Dice similarity
 * (string-similarity's, from cached profiles) on normalized text, so the medoid scores highest.
 */
import type { Evaluator } from "../src/consensus/evaluator"
import { normalize } from "../src/consensus/normalize"
import { dice } from "../src/consensus/similarity"
import { DEFAULT_GROUPING, equivalent } from "../src/consensus/vote"

const evaluator: Evaluator = {
  name: "consistency",
  description: "Mean agreement of each candidate with the others",
  evaluate: ({ candidates }) => {
    if (candidates.length < 2) return candidates.map(() => 1)
    const answers = candidates.map((c) => normalize(c.content))
    const sums = answers.map(() => 0)
    // Each pair once: agreement is symmetric.
    for (let i = 0; i < answers.length; i++) {
      for (let j = i + 1; j < answers.length; j++) {
        const a = answers[i]!
        const b = answers[j]!
        const s = a.kind === "text" && b.kind === "text" ? dice(a.key, b.key) : equivalent(a, b, DEFAULT_GROUPING) ? 1 : 0
        sums[i]! += s
        sums[j]! += s
      }
    }
    return sums.map((sum) => sum / (answers.length - 1))
  }
}

export default evaluator
