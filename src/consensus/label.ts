/**
 * A label as feedback gives it ("C", "18", "[1, 2]", a JSON document, or text as a model
 * would write it), normalized like the candidates and matched to the group it names.
 */
import { normalize, type Normalized } from "./normalize"
import { DEFAULT_GROUPING, equivalent } from "./vote"

/** A stored normalized answer back as the value `equivalent` compares. */
export const storedAnswer = (kind: string, key: string): Normalized | undefined => {
  switch (kind) {
    case "number":
      return { kind, key, value: Number(key) }
    case "json":
      try {
        return { kind, key, value: JSON.parse(key) as unknown }
      } catch {
        return undefined
      }
    case "choice":
    case "code":
    case "short":
    case "text":
    case "tool_calls":
      return { kind, key }
    default:
      return undefined
  }
}

/** The key of the group whose answers the label names, or null when no candidate gave it. */
export const groupOfLabel = (
  label: string,
  candidates: ReadonlyArray<{ readonly kind: string | null; readonly answer: string | null; readonly group: string | null }>
): string | null => {
  const wanted = normalize(label)
  for (const c of candidates) {
    if (c.kind === null || c.answer === null || c.group === null) continue
    const answer = storedAnswer(c.kind, c.answer)
    if (answer !== undefined && (equivalent(wanted, answer, DEFAULT_GROUPING) || wanted.key === answer.key)) return c.group
  }
  return null
}
