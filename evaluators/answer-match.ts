/**
 * answer_match: normalizes each final answer (numbers with a tolerance, canonical JSON,
 * multiple-choice letters, fenced code, case and whitespace) and scores a candidate by
 * the share of candidates that gave an equivalent answer. What voting counts.
 *
 * options: { relative_tolerance?: number, absolute_tolerance?: number }
 */
import type { Evaluator } from "../src/consensus/evaluator"
import { normalize } from "../src/consensus/normalize"
import { DEFAULT_GROUPING, group } from "../src/consensus/vote"

const tolerance = (value: unknown, fallback: number) => (typeof value === "number" && value >= 0 ? value : fallback)

const evaluator: Evaluator = {
  name: "answer_match",
  description: "Share of candidates whose normalized final answer is equivalent to this one",
  evaluate: ({ candidates, options }) => {
    const groups = group(
      candidates.map((c) => ({ id: c.id, answer: normalize(c.content), weight: 1 })),
      {
        ...DEFAULT_GROUPING,
        relativeTolerance: tolerance(options.relative_tolerance, DEFAULT_GROUPING.relativeTolerance),
        absoluteTolerance: tolerance(options.absolute_tolerance, DEFAULT_GROUPING.absoluteTolerance)
      }
    )
    const share = new Map<string, number>()
    for (const g of groups) for (const id of g.members) share.set(id, g.members.length / candidates.length)
    return candidates.map((c) => share.get(c.id) ?? 0)
  }
}

export default evaluator
