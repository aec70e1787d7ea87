/**
 * No non-null assertion (`x!`) in src/: where a value may be absent the type says so and
 * the code says what then happens (issue 12). The compiler's own parser finds them, so
 * `!==`, `!x` and `!` inside strings or comments are never mistaken for one.
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
})
