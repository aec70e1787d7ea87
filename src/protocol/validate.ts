import Ajv from "ajv"
import { Either, JSONSchema, type ParseResult, Schema, SchemaAST as AST } from "effect"

/**
 * Checks a value against a schema without rebuilding it, for wire types whose decoded
 * and encoded forms are the same: the value comes back as it is, unknown fields
 * included (which pass-through needs). Only a value that fails is decoded, for the
 * error that says where.
 *
 * The check is the schema compiled to JSON Schema and then by ajv into one function of
 * its own (~0.1 µs for a chat request against ~1.2 µs for Schema.is, which allocates as
 * it goes and, shared by every schema, runs megamorphic: ~10 µs of a request's CPU on
 * the hot path). Only where JSON Schema says all the schema checks (see `compilable`);
 * otherwise Schema.is. Both agree on every value (test/validate.test.ts holds them to it).
 */
export const validator = <A>(schema: Schema.Schema<A, A>) => {
  // Compiled on first use: ajv takes 5–50 ms a schema, which start-up should not wait for.
  let is: ((value: unknown) => boolean) | undefined
  const decode = Schema.decodeUnknownEither(schema)
  return (value: unknown): Either.Either<A, ParseResult.ParseError> => {
    is ??= compiled(schema) ?? Schema.is(schema)
    return is(value) ? Either.right(value as A) : decode(value)
  }
}

// Lengths in UTF-16 units and patterns without the `u` flag, as Schema's minLength and pattern count them.
// (ajv calls `unicode` deprecated and says so on every start; its logger is for schema authors, and these schemas are generated.)
const ajv = new Ajv({ strict: false, unicode: false, unicodeRegExp: false, allErrors: false, validateFormats: false, logger: false })

/** The compiled check, or undefined where JSON Schema cannot say everything the schema does. */
export const compiled = <A>(schema: Schema.Schema<A, A>): ((value: unknown) => boolean) | undefined => {
  const ast = AST.typeAST(schema.ast)
  if (!compilable(ast, new Set())) return undefined
  const definitions: Record<string, JSONSchema.JsonSchema7> = {}
  const root = JSONSchema.fromAST(ast, { definitions, additionalPropertiesStrategy: "allow" })
  const check = ajv.compile(tidy({ ...root, $defs: definitions }) as object)
  return (value) => check(value) === true
}

/**
 * Whether the JSON Schema of `ast` holds every check Schema makes: each refinement says
 * what it checks in JSON Schema (the built-in ones do; a bare `Schema.filter` does not,
 * and would be dropped), and nothing is declared (classes, dates) or transformed.
 */
const compilable = (ast: AST.AST, seen: Set<AST.AST>): boolean => {
  if (seen.has(ast)) return true
  seen.add(ast)
  switch (ast._tag) {
    case "Declaration":
    case "Transformation":
    case "BigIntKeyword":
    case "SymbolKeyword":
    case "UniqueSymbol":
      return false
    case "Refinement":
      return AST.getJSONSchemaAnnotation(ast)._tag === "Some" && compilable(ast.from, seen)
    case "TupleType":
      return ast.elements.every((e) => compilable(e.type, seen)) && ast.rest.every((r) => compilable(r.type, seen))
    case "TypeLiteral":
      return ast.propertySignatures.every((p) => compilable(p.type, seen)) &&
        ast.indexSignatures.every((i) => compilable(i.parameter, seen) && compilable(i.type, seen))
    case "Union":
      return ast.types.every((t) => compilable(t, seen))
    case "Suspend":
      return compilable(ast.f(), seen)
    default:
      return true
  }
}

/**
 * The generated schema as ajv should read it: `$id`s dropped (Schema.Unknown's repeats
 * in every place it is used, which ajv refuses), and integers bounded to the safe ones,
 * as Schema.Int is (`1e300` is an integer to JSON Schema, not to Schema).
 */
const tidy = (node: unknown): unknown => {
  if (Array.isArray(node)) return node.map(tidy)
  if (node === null || typeof node !== "object") return node
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(node)) if (key !== "$id") out[key] = tidy(value)
  if (out["type"] === "integer") {
    out["minimum"] = Math.max(typeof out["minimum"] === "number" ? out["minimum"] : -Infinity, Number.MIN_SAFE_INTEGER)
    out["maximum"] = Math.min(typeof out["maximum"] === "number" ? out["maximum"] : Infinity, Number.MAX_SAFE_INTEGER)
  }
  return out
}
