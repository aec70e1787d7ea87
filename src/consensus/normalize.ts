/**
 * Reduces a model's answer to what two answers must share to count as the same: a
 * number, canonical JSON, a multiple-choice letter, a piece of code, a short phrase, or
 * (for everything else) free text. Only free text is ever compared by character
 * similarity: on short answers it lies ("100" and "1000" score 0.8 on Dice).
 */
export type Normalized =
  | { readonly kind: "tool_calls"; readonly key: string }
  | { readonly kind: "json"; readonly key: string; readonly value: unknown }
  | { readonly kind: "number"; readonly key: string; readonly value: number }
  | { readonly kind: "choice"; readonly key: string }
  | { readonly kind: "code"; readonly key: string }
  | { readonly kind: "short"; readonly key: string }
  | { readonly kind: "text"; readonly key: string }

/** Longer than this (in words) an answer is free text, not a short answer. */
const SHORT_WORDS = 8

const FENCED = /^```[ \t]*([\w+#.-]*)[ \t]*\r?\n([\s\S]*?)\r?\n?```\s*$/

/** The last "answer is X" / "Answer: X" in the text, if any: models explain, then answer. */
const FINAL_ANSWER = /(?:final answer|answer)\s*(?:is|:|=)\s*[*_`"']*([^\n*_`"']+)/gi

/** Keys sorted at every level, so that key order never splits a vote. */
export const canonicalJson = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`
  }
  return JSON.stringify(value)
}

/**
 * Tool calls as one answer: each call's function name and its arguments as canonical JSON
 * (as written, when they are not JSON), in a fixed order, since parallel calls have none.
 * Only ever equivalent to other tool calls: text and a tool call never agree.
 */
export const normalizeToolCalls = (calls: ReadonlyArray<{ readonly function: { readonly name: string; readonly arguments: string } }>): Normalized => {
  const parts = calls.map((call) => {
    let args: unknown = call.function.arguments
    try {
      args = JSON.parse(call.function.arguments)
    } catch {
      // not JSON: compared as written
    }
    return canonicalJson({ name: call.function.name, arguments: args })
  })
  return { kind: "tool_calls", key: `[${parts.sort().join(",")}]` }
}

const parseJson = (text: string): { ok: true; value: unknown } | { ok: false } => {
  const trimmed = text.trim()
  if (!/^[[{]/.test(trimmed)) return { ok: false }
  try {
    return { ok: true, value: JSON.parse(trimmed) }
  } catch {
    return { ok: false }
  }
}

/** "1,000", "$42", "42.0", "-3.5e2", "12%" → a number; anything else is not one. */
export const parseNumber = (text: string): number | undefined => {
  const cleaned = text.trim().replace(/^[$€£]/, "").replace(/%$/, "").replace(/(\d),(?=\d{3}\b)/g, "$1")
  if (!/^[-+]?(\d+(\.\d*)?|\.\d+)(e[-+]?\d+)?$/i.test(cleaned)) return undefined
  const value = Number(cleaned)
  return Number.isFinite(value) ? value : undefined
}

const collapse = (text: string): string => text.replace(/\s+/g, " ").trim()

const normalizeCode = (code: string): string =>
  code.split(/\r?\n/).map((line) => line.replace(/\s+$/, "")).filter((line) => line.trim() !== "").join("\n")

// Each evaluator and the grouping normalize the same answers of a request again.
const cache = new Map<string, Normalized>()
const MAX_CACHED = 1_024

export const normalize = (answer: string): Normalized => {
  const cached = cache.get(answer)
  if (cached !== undefined) return cached
  const normalized = normalizeUncached(answer)
  if (cache.size >= MAX_CACHED) cache.clear()
  cache.set(answer, normalized)
  return normalized
}

const normalizeUncached = (answer: string): Normalized => {
  const text = answer.trim()

  const fenced = FENCED.exec(text)?.[2]
  if (fenced !== undefined) {
    const json = parseJson(fenced)
    if (json.ok) return { kind: "json", key: canonicalJson(json.value), value: json.value }
    return { kind: "code", key: normalizeCode(fenced) }
  }

  const json = parseJson(text)
  if (json.ok) return { kind: "json", key: canonicalJson(json.value), value: json.value }

  const finals = [...text.matchAll(FINAL_ANSWER)]
  const candidate = collapse((finals.at(-1)?.[1] ?? text).replace(/[.!?;,]+$/, ""))

  const number = parseNumber(candidate)
  if (number !== undefined) return { kind: "number", key: String(number), value: number }

  const choice = /^(?:option\s+)?\(?([a-h])\)?[.):]?$/i.exec(candidate)?.[1]
  if (choice !== undefined) return { kind: "choice", key: choice.toUpperCase() }

  if (candidate.split(" ").length <= SHORT_WORDS) {
    return { kind: "short", key: candidate.toLowerCase().replace(/^["'“‘]+|["'”’]+$/g, "") }
  }
  return { kind: "text", key: collapse(text).toLowerCase() }
}
