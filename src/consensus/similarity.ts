/**
 * string-similarity's Dice coefficient (compareTwoStrings: bigrams of the text without
 * whitespace), computed from bigram profiles that are built once per text. The library
 * rebuilds a profile on every comparison, and scoring compares each answer with every
 * other several times: 8.4 ms for five 2 KB answers, against the goal of 1 ms. The
 * tests hold this to the library's results.
 */
interface Profile {
  readonly text: string
  readonly bigrams: ReadonlyMap<string, number>
}

// Answers of one request are compared again by each evaluator and by grouping.
const cache = new Map<string, Profile>()
const MAX_CACHED = 1_024

const profile = (raw: string): Profile => {
  const cached = cache.get(raw)
  if (cached !== undefined) return cached
  const text = raw.replace(/\s+/g, "")
  const bigrams = new Map<string, number>()
  for (let i = 0; i < text.length - 1; i++) {
    const bigram = text.substring(i, i + 2)
    bigrams.set(bigram, (bigrams.get(bigram) ?? 0) + 1)
  }
  if (cache.size >= MAX_CACHED) cache.clear()
  const made = { text, bigrams }
  cache.set(raw, made)
  return made
}

export const dice = (first: string, second: string): number => {
  const a = profile(first)
  const b = profile(second)
  if (a.text === b.text) return 1
  if (a.text.length < 2 || b.text.length < 2) return 0
  const [small, large] = a.bigrams.size <= b.bigrams.size ? [a.bigrams, b.bigrams] : [b.bigrams, a.bigrams]
  let intersection = 0
  for (const [bigram, count] of small) intersection += Math.min(count, large.get(bigram) ?? 0)
  return (2 * intersection) / (a.text.length + b.text.length - 2)
}
