/**
 * The arithmetic a prompt asks for ("What is 17 * 23?", "compute (3 + 4) times 2"),
 * worked out by a small recursive-descent parser: prompts are untrusted text, so nothing
 * is ever evaluated as code, and only numbers, + - * / ^ and parentheses are read.
 */

export interface Arithmetic {
  /** The expression as a person would write it: "17 × 23". */
  readonly expression: string
  readonly value: number
}

type Token = { readonly kind: "number"; readonly value: number; readonly text: string } | { readonly kind: "op"; readonly op: string }

const WORDS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bmultiplied\s+by\b/gi, " * "],
  [/\btimes\b/gi, " * "],
  [/\bdivided\s+by\b/gi, " / "],
  [/\bplus\b/gi, " + "],
  [/\bminus\b/gi, " - "],
  [/\bto\s+the\s+power\s+of\b/gi, " ^ "],
  [/[×✕]/g, " * "],
  [/÷/g, " / "],
  [/[−–]/g, " - "],
  [/\*\*/g, " ^ "],
  // "17 x 23": an x between two numbers is a multiplication sign.
  [/(\d)\s*x\s*(?=[\d(])/gi, "$1 * "]
]

const tokenize = (text: string): Array<Token> | undefined => {
  const tokens: Array<Token> = []
  const pattern = /\s*(?:(\d+(?:\.\d+)?|\.\d+)|([-+*/^()]))/y
  let at = 0
  while (at < text.length) {
    pattern.lastIndex = at
    const match = pattern.exec(text)
    if (match === null) return /^\s*$/.test(text.slice(at)) ? tokens : undefined
    at = pattern.lastIndex
    // One of the two groups takes part in a match.
    const [, number, op] = match
    if (number !== undefined) tokens.push({ kind: "number", value: Number(number), text: number })
    else if (op !== undefined) tokens.push({ kind: "op", op })
  }
  return tokens
}

/** expression := term (("+" | "-") term)*; term := power (("*" | "/") power)*; power := unary ("^" power)?; unary := "-"? atom. */
const parse = (tokens: ReadonlyArray<Token>): number | undefined => {
  let at = 0
  const peekOp = (): string | undefined => {
    const token = tokens[at]
    return token?.kind === "op" ? token.op : undefined
  }
  const atom = (depth: number): number | undefined => {
    const token = tokens[at]
    if (token === undefined || depth > 32) return undefined
    if (token.kind === "number") {
      at++
      return token.value
    }
    if (token.op !== "(") return undefined
    at++
    const inner = expression(depth + 1)
    if (inner === undefined || peekOp() !== ")") return undefined
    at++
    return inner
  }
  const unary = (depth: number): number | undefined => {
    if (peekOp() === "-" || peekOp() === "+") {
      const sign = peekOp() === "-" ? -1 : 1
      at++
      const value = unary(depth + 1)
      return value === undefined ? undefined : sign * value
    }
    return atom(depth)
  }
  const power = (depth: number): number | undefined => {
    const base = unary(depth)
    if (base === undefined || peekOp() !== "^") return base
    at++
    const exponent = power(depth + 1)
    return exponent === undefined ? undefined : base ** exponent
  }
  const term = (depth: number): number | undefined => {
    let value = power(depth)
    while (value !== undefined && (peekOp() === "*" || peekOp() === "/")) {
      const op = peekOp()
      at++
      const right = power(depth)
      if (right === undefined) return undefined
      value = op === "*" ? value * right : value / right
    }
    return value
  }
  const expression = (depth: number): number | undefined => {
    let value = term(depth)
    while (value !== undefined && (peekOp() === "+" || peekOp() === "-")) {
      const op = peekOp()
      at++
      const right = term(depth)
      if (right === undefined) return undefined
      value = op === "+" ? value + right : value - right
    }
    return value
  }
  const value = expression(0)
  return at === tokens.length && value !== undefined && Number.isFinite(value) ? value : undefined
}

/** "17 × 23", "(3 + 4) × 2", "-3 × -4": binary operators spaced, signs and parentheses tight. */
const pretty = (tokens: ReadonlyArray<Token>): string => {
  let out = ""
  let glue = true
  for (const [i, t] of tokens.entries()) {
    const previous = tokens[i - 1]
    const sign = t.kind === "op" && (t.op === "-" || t.op === "+") &&
      (previous === undefined || (previous.kind === "op" && previous.op !== ")"))
    const text = t.kind === "number" ? t.text : t.op === "*" ? "×" : t.op === "/" ? "÷" : t.op
    out += glue || (t.kind === "op" && t.op === ")") ? text : ` ${text}`
    glue = sign || (t.kind === "op" && t.op === "(")
  }
  return out
}

/** A result as people write it: integers exactly, others to 10 significant digits. */
export const formatNumber = (value: number): string =>
  Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(10)))

/** The longest run of the prompt that reads as arithmetic with at least one operation. */
export const findArithmetic = (prompt: string): Arithmetic | undefined => {
  let text = prompt
  for (const [pattern, replacement] of WORDS) text = text.replace(pattern, replacement)
  const runs = text.match(/[-+*/^().\d\s]+/g) ?? []
  let best: Arithmetic | undefined
  for (const run of runs) {
    // A sentence's closing period is not a decimal point.
    const candidate = run.trim().replace(/\.$/, "").trim()
    // "1-2 sentences", "2025-01-15": ranges and dates, not subtractions.
    if (/^\d+(?:-\d+)+$/.test(candidate)) continue
    const tokens = tokenize(candidate)
    if (tokens === undefined) continue
    const numbers = tokens.filter((t) => t.kind === "number").length
    const operations = tokens.filter((t) => t.kind === "op" && t.op !== "(" && t.op !== ")").length
    if (numbers < 2 || operations < 1) continue
    const value = parse(tokens)
    if (value === undefined) continue
    const expression = pretty(tokens)
    // 0.1 + 0.2 is 0.3 to anyone asking.
    const rounded = Number(formatNumber(value))
    if (best === undefined || expression.length > best.expression.length) best = { expression, value: rounded }
  }
  return best
}
