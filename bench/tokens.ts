/**
 * npm run bench:tokens — what counting a prompt's tokens costs (budgets, token rate limits,
 * conditional routing and cut streams count them), Quorum's count (src/protocol/tokens.ts,
 * slices cut between the pre-tokenizer's pieces) side by side with gpt-tokenizer's own on
 * the same text: prose, a short prompt, and runs of one kind of character, which the
 * tokenizer alone takes quadratic time for. Medians of ROUNDS, each with the tokenizer's
 * cache of encoded pieces emptied first; the tokenizer alone is run on runs only up to
 * RAW_MAX characters (beyond, it takes seconds to hours).
 *
 * Options (env): ROUNDS=5 RAW_MAX=20000
 */
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import { countTokens } from "../src/protocol/tokens"

const ROUNDS = Number(process.env.ROUNDS ?? 5)
const RAW_MAX = Number(process.env.RAW_MAX ?? 20_000)
const { countTokens: tokenizer, clearMergeCache } = createRequire(import.meta.url)("gpt-tokenizer") as {
  countTokens: (text: string) => number
  clearMergeCache: () => void
}

const median = (values: Array<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN

/** Milliseconds a count takes (median), and the count. */
const timed = (count: (text: string) => number, text: string, repeat = 1): { ms: number; tokens: number } => {
  let tokens = 0
  const rounds: Array<number> = []
  for (let round = 0; round < ROUNDS; round++) {
    // The tokenizer keeps the pieces it has encoded (Quorum's count uses the same one): each round starts without them.
    clearMergeCache()
    const t0 = performance.now()
    for (let i = 0; i < repeat; i++) tokens = count(text)
    rounds.push((performance.now() - t0) / repeat)
  }
  return { ms: median(rounds), tokens }
}

/** CJK characters in a pseudo-random order (no slice repeats, so the tokenizer's cache does not help). */
const cjk = (length: number) => {
  let seed = 7
  return Array.from({ length }, () => String.fromCodePoint(0x4e00 + ((seed = (seed * 16807) % 2147483647) % 20_000))).join("")
}

const main = () => {
  const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8")
  const texts: Array<[string, string, number]> = [
    ["a short prompt (50 characters)", "What is the capital of France? Answer in one word.", 10_000],
    [`prose: README.md three times (${readme.length * 3} characters)`, readme.repeat(3), 1],
    ["20,000 spaces", " ".repeat(20_000), 1],
    ["20,000 CJK characters without punctuation", cjk(20_000), 1],
    ["10,000 emoji", "🙂".repeat(10_000), 1],
    ["4,000,000 spaces (a 4 MiB body)", " ".repeat(4_000_000), 1],
    ["1,300,000 CJK characters (a 4 MiB body)", cjk(1_300_000), 1]
  ]
  countTokens("warm up")
  tokenizer("warm up")
  console.log(`# bench:tokens  ${ROUNDS} rounds; node ${process.version}`)
  console.log("\n| text | tokens | gpt-tokenizer alone, ms | Quorum's count, ms |\n|---|---|---|---|")
  for (const [name, text, repeat] of texts) {
    const ours = timed(countTokens, text, repeat)
    const theirs = text.length <= RAW_MAX || repeat > 1 || name.startsWith("prose") ? timed(tokenizer, text, repeat) : undefined
    const ms = (value: number) => (value < 0.1 ? value.toFixed(4) : value.toFixed(1))
    console.log(`| ${name} | ${ours.tokens} | ${theirs === undefined ? "— (not run)" : ms(theirs.ms)} | ${ms(ours.ms)} |`)
  }
}

main()
