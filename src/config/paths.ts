import { ParseResult } from "effect"

/** `["models", 0, "provider"]` → `models[0].provider`, the way people write keys. */
export const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (acc, key) => (typeof key === "number" ? `${acc}[${key}]` : acc === "" ? String(key) : `${acc}.${String(key)}`),
    ""
  )

export interface Issue {
  readonly path: string
  readonly message: string
}

/** The first issue of a Schema parse error, with its path in the form above. */
export const firstIssue = (error: ParseResult.ParseError): Issue => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const first = issues[0]
  return first === undefined
    ? { path: "", message: error.message }
    : { path: formatPath(first.path), message: first.message }
}
