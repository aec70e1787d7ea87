/**
 * No non-null assertion (`x!`) in src/: where a value may be absent the type says so and
 * the code says what then happens (issue 12). The compiler's own parser finds them, so
 * `!==`, `!x` and `!` inside strings or comments are never mistaken for one.
 *
 * On the request path, no generator function made per call (README, Development): a
 * `function*` inside an arrow, a function or a method is made each time that runs, and V8
 * then keeps the request's state alive through scavenges (BENCHMARKS.md, eighth session).
 * One inside a generator (a service's constructor, an Effect.fnUntraced body) is not found
 * by this check: a constructor runs once, and a body's inner generators are for review.
 */
import { readdirSync, readFileSync } from "node:fs"
import { join, relative } from "node:path"
import ts from "typescript"
import { describe, expect, it } from "vitest"

const SRC = join(import.meta.dirname, "..", "src")

const filesUnder = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return filesUnder(path)
    return entry.name.endsWith(".ts") ? [path] : []
  })

/** `file:line: expression` for each non-null assertion in the text. */
const nonNullAssertions = (file: string, text: string): Array<string> => {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const found: Array<string> = []
  const visit = (node: ts.Node): void => {
    if (ts.isNonNullExpression(node)) {
      const { line } = source.getLineAndCharacterOfPosition(node.getStart(source))
      found.push(`${file}:${line + 1}: ${node.getText(source)}`)
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

/**
 * The folders and files every request runs through. Left out: admin, start-up and
 * learning code (run once or on feedback), and the SQL store and ledger writer, whose
 * request-path steps sit beside admin reports and shutdown code in the same files.
 */
const REQUEST_PATH = [
  "http/hot", "providers", "routing", "policy", "protocol", "ingress", "domain", "cache", "consensus", "state", "telemetry",
  "http/chat-answer.ts", "http/chat-cache.ts", "http/chat-completions.ts", "http/chat-consensus.ts", "http/consensus.ts",
  "http/embeddings.ts", "http/messages.ts", "http/responses.ts", "http/metered.ts", "http/policies.ts", "http/read-body.ts",
  "http/read-json-body.ts", "http/sse.ts", "http/errors.ts", "http/hot-routes.ts",
  "billing/ticket.ts", "billing/spend.ts", "billing/meter.ts", "billing/coalesce.ts", "billing/worst-case.ts"
]
const ONCE = ["routing/learned/store.ts", "consensus/learning/outcome-store.ts", "consensus/registry.ts"]

/** A call whose generator argument runs on every call of what it returns (Effect.fnUntraced, Effect.fn). */
const makesPerCallFunction = (node: ts.Node): boolean =>
  ts.isCallExpression(node.parent) && /\bfn(Untraced)?$/.test(node.parent.expression.getText())

/**
 * `file:line` for each generator function made per call: inside a plain function, or inside
 * a generator that itself runs per call (an Effect.fnUntraced body, a generator method).
 */
const perCallGenerators = (file: string, text: string): Array<string> => {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const found: Array<string> = []
  const visit = (node: ts.Node, perCall: boolean): void => {
    const isFunction = ts.isFunctionLike(node) && !ts.isFunctionTypeNode(node) && !ts.isConstructorTypeNode(node) && !ts.isMethodSignature(node)
    const isGenerator = isFunction && "asteriskToken" in node && node.asteriskToken !== undefined
    // A generator method is made once, with its class.
    if (isGenerator && perCall && !ts.isMethodDeclaration(node)) {
      found.push(`${file}:${source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1}`)
    }
    const bodyRunsPerCall = isFunction && (!isGenerator || ts.isMethodDeclaration(node) || makesPerCallFunction(node))
    ts.forEachChild(node, (child) => visit(child, bodyRunsPerCall || perCall))
  }
  visit(source, false)
  return found
}

describe("style", () => {
  it("finds a non-null assertion, and nothing that only looks like one", () => {
    const text = [
      "declare const a: { b?: string } | undefined",
      "export const c = a!.b",
      "export const d = a !== undefined && !a.b",
      "export const e = \"a!.b\" // a!.b"
    ].join("\n")
    expect(nonNullAssertions("sample.ts", text)).toEqual(["sample.ts:2: a!"])
  })

  it("has no non-null assertion in src/", () => {
    const files = filesUnder(SRC)
    expect(files.length).toBeGreaterThan(100)
    const found = files.flatMap((path) => nonNullAssertions(relative(join(SRC, ".."), path), readFileSync(path, "utf8")))
    expect(found, `non-null assertions in src/:\n${found.join("\n")}`).toEqual([])
  })

  it("finds a generator function made per call, and not one made once", () => {
    const text = [
      "const once = Effect.fnUntraced(function*(a: number) { return a })",
      "const perCall = (a: number) => Effect.gen(function*() { return a })",
      "class T { *steps() { yield 1 } run() { return Effect.gen(() => this.steps()) } }",
      "function outer() { return Either.gen(function*() { return 1 }) }",
      "const service = Effect.gen(function*() { const inner = Effect.fnUntraced(function*() { return 1 }); return inner })",
      "const steps = Effect.fnUntraced(function*() { return yield* Effect.gen(function*() { return 1 }) })",
      "class U { *steps() { return yield* Effect.gen(function*() { return 1 }) } }"
    ].join("\n")
    expect(perCallGenerators("sample.ts", text)).toEqual(["sample.ts:2", "sample.ts:4", "sample.ts:6", "sample.ts:7"])
  })

  it("makes no generator function per call on the request path", () => {
    const files = REQUEST_PATH.flatMap((entry) => {
      const path = join(SRC, entry)
      return entry.endsWith(".ts") ? [path] : filesUnder(path)
    }).filter((path) => !ONCE.some((once) => relative(SRC, path).startsWith(once)))
    expect(files.length).toBeGreaterThan(80)
    const found = files.flatMap((path) => perCallGenerators(relative(join(SRC, ".."), path), readFileSync(path, "utf8")))
    expect(found, `generator functions made per call:\n${found.join("\n")}`).toEqual([])
  })
})
