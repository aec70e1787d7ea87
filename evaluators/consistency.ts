/**
 * consistency: how much each candidate agrees with the others. Answers that normalize
 * to a number, JSON, a choice, code or a short phrase agree or not (never "80 % alike":
 * "100" and "1000" are different answers); free text is compared by Dice similarity
 * (string-similarity) on normalized text, so the medoid scores highest.
 */
import stringSimilarity from "string-similarity"
import type { Evaluator } from "../src/consensus/evaluator"
import { normalize } from "../src/consensus/normalize"
import { DEFAULT_GROUPING, equivalent } from "../src/consensus/vote"

const evaluator: Evaluator = {
  name: "consistency",
  description: "Mean agreement of each candidate with the others",
  evaluate: ({ candidates }) => {
    if (candidates.length < 2) return candidates.map(() => 1)
    const answers = candidates.map((c) => normalize(c.content))
    return answers.map((a, i) => {
      let total = 0
      for (const [j, b] of answers.entries()) {
        if (i === j) continue
        total += a.kind === "text" && b.kind === "text"
          ? stringSimilarity.compareTwoStrings(a.key, b.key)
          : equivalent(a, b, DEFAULT_GROUPING) ? 1 : 0
      }
      return total / (answers.length - 1)
    })
  }
}

export default evaluator
