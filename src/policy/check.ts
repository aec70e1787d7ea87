/**
 * A content check: finds spans of text that a policy cares about (an e-mail address, a card
 * number, a key, a word on a blocklist). Checks only find; what happens to a finding
 * (block, redact, route) is the policy's action (policy.ts). A type of check is one file
 * under checks/ (its config shape and how it is built) and one line in registry.ts.
 */
import type { Either, Schema } from "effect"

/** One span a check found: [start, end) in the text it was given. */
export interface Finding {
  /** The check that found it (its configured name or its type). */
  readonly check: string
  /** What was found, for messages and redaction markers: `email`, `card`, `secret`, … */
  readonly label: string
  readonly start: number
  readonly end: number
}

export interface Check {
  readonly name: string
  /**
   * The longest text one finding can span: a stream is scanned with this much held back
   * from the previous chunks, so a finding split across chunks is still found whole.
   */
  readonly maxSpan: number
  find(text: string): ReadonlyArray<Finding>
}

/** A type of check as the config names it (`type:`): its settings' shape, and the checks it builds. */
export interface CheckType<S extends { readonly type: string }> {
  readonly type: S["type"]
  readonly spec: Schema.Schema<S>
  /** The checks a configured one runs, or the field that is wrong and why. */
  readonly build: (spec: S) => Either.Either<ReadonlyArray<Check>, readonly [string, string]>
}

/** Every match of a global regex as a finding (zero-length matches skipped). */
export const findAll = (re: RegExp, text: string, check: string, label: string, accept: (match: RegExpExecArray) => boolean = () => true): ReadonlyArray<Finding> => {
  const found: Array<Finding> = []
  re.lastIndex = 0
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (m[0].length === 0) {
      re.lastIndex++
      continue
    }
    if (accept(m)) found.push({ check, label, start: m.index, end: m.index + m[0].length })
  }
  return found
}

/**
 * The findings as disjoint spans, in order: where two overlap, the one that starts first
 * (then the longer) stands for both, so a redaction never cuts inside another.
 */
export const disjoint = (findings: ReadonlyArray<Finding>): ReadonlyArray<Finding> => {
  const sorted = [...findings].sort((a, b) => a.start - b.start || b.end - a.end)
  const kept: Array<Finding> = []
  for (const f of sorted) {
    const last = kept.at(-1)
    if (last !== undefined && f.start < last.end) continue
    kept.push(f)
  }
  return kept
}
