import Ajv from "ajv"
import { Either, JSONSchema, Option, type ParseResult, Schema, SchemaAST as AST } from "effect"

/**
 * Checks a value against a schema without rebuilding it, for wire types whose decoded
 * and encoded forms are the same: the value comes back as it is, unknown fields
 * included (which pass-through needs). Only a value that fails is decoded, for the
 * error that says where.
 *
 * The first check is the schema compiled to JSON Schema and then by ajv into a function
 * of its own (~0.1 µs for a chat request against ~1.2 µs for Schema.is, which allocates
 * as it goes and, shared by every schema, runs megamorphic: ~10 µs of a request's CPU on
 * the hot path). It only ever says yes where Schema.is would (see `compiled`); a value
 * it refuses goes to Schema.is, then to the decode, as before.
 */
export const validator = <A>(schema: Schema.Schema<A, A>) => {
  // Compiled on first use: ajv takes 5–50 ms a schema, which start-up should not wait for.
  let check: ((value: unknown) => boolean) | undefined
  const is = Schema.is(schema)
  const decode = Schema.decodeUnknownEither(schema)
  const accepts = (value: unknown): boolean => {
    if (check === undefined) {
      const fast = compiled(schema)
      check = fast === undefined ? is : (v) => fast(v) || is(v)
    }
    return check(value)
  }
  return (value: unknown): Either.Either<A, ParseResult.ParseError> => (accepts(value) ? Either.right(value as A) : decode(value))
}

/**
 * Marks a filter whose `jsonSchema` annotation says exactly what its predicate checks, so
 * that the schema it is part of can be compiled (test/validate.test.ts holds each one to it).
 */
export const EXACT_JSON_SCHEMA: unique symbol = Symbol.for("quorum/ExactJsonSchema")

/**
 * Effect's filters whose JSON Schema is exactly their predicate (for JSON values, with
 * ajv counting lengths as Schema does). Not startsWith and its kin (an unescaped
 * pattern), lowercased and its kin (ASCII only), multipleOf, finite.
 */
const EXACT_FILTERS: ReadonlySet<symbol> = new Set([
  Schema.MinLengthSchemaId, Schema.MaxLengthSchemaId, Schema.LengthSchemaId,
  Schema.MinItemsSchemaId, Schema.MaxItemsSchemaId, Schema.ItemsCountSchemaId,
  Schema.GreaterThanSchemaId, Schema.GreaterThanOrEqualToSchemaId, Schema.LessThanSchemaId,
  Schema.LessThanOrEqualToSchemaId, Schema.BetweenSchemaId, Schema.IntSchemaId, Schema.PatternSchemaId
])

// Lengths in UTF-16 units and patterns without the `u` flag, as Schema's minLength and
// pattern count them; required keys must be the value's own, as Schema wants them.
// (ajv calls `unicode` deprecated and says so on every start; its logger is for schema authors, and these schemas are generated.)
const ajv = new Ajv({ strict: false, unicode: false, unicodeRegExp: false, ownProperties: true, allErrors: false, validateFormats: false, logger: false })

/**
 * The compiled check, or undefined where JSON Schema cannot say everything the schema
 * does, or anything goes wrong making it (Schema.is then does the work, as before).
 */
export const compiled = <A>(schema: Schema.Schema<A, A>): ((value: unknown) => boolean) | undefined => {
  try {
    if (!compilable(schema.ast, new Set())) return undefined
    const definitions: Record<string, JSONSchema.JsonSchema7> = {}
    const root = JSONSchema.fromAST(schema.ast, { definitions, additionalPropertiesStrategy: "allow" })
    const check = ajv.compile(tidy({ ...root, $defs: definitions }) as object)
    return (value) => check(value) === true
  } catch {
    return undefined
  }
}

/**
 * Whether the JSON Schema of `ast` holds every check Schema makes: each refinement one
 * whose JSON Schema is exact (above, or marked EXACT_JSON_SCHEMA), no other node with a
 * JSON Schema of its own (it would replace what is generated), nothing declared (classes,
 * dates) or transformed, and none of the shapes JSON Schema reads otherwise: a required
 * key whose type allows undefined (JSON Schema makes it optional), a struct with an index
 * signature (Schema checks the declared keys against it too).
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
      return exactFilter(ast) && compilable(ast.from, seen)
    case "TupleType":
      return ownSchemaless(ast) && ast.elements.every((e) => compilable(e.type, seen)) && ast.rest.every((r) => compilable(r.type, seen))
    case "TypeLiteral":
      return ownSchemaless(ast) && (ast.indexSignatures.length === 0 || ast.propertySignatures.length === 0) &&
        ast.propertySignatures.every((p) => (p.isOptional || !allowsUndefined(p.type)) && compilable(p.type, seen)) &&
        ast.indexSignatures.every((i) => compilable(i.parameter, seen) && compilable(i.type, seen))
    case "Union":
      return ownSchemaless(ast) && ast.types.every((t) => compilable(t, seen))
    case "Suspend":
      return ownSchemaless(ast) && compilable(ast.f(), seen)
    default:
      return true
  }
}

const ownSchemaless = (ast: AST.AST): boolean => Option.isNone(AST.getJSONSchemaAnnotation(ast))

const exactFilter = (ast: AST.Refinement): boolean => {
  if (ast.annotations[EXACT_JSON_SCHEMA] === true) return true
  const id = Option.getOrUndefined(AST.getSchemaIdAnnotation(ast))
  if (typeof id !== "symbol" || !EXACT_FILTERS.has(id)) return false
  // A pattern's flags (u, i, s, m) are not in its JSON Schema.
  if (id !== Schema.PatternSchemaId) return true
  const regex = (ast.annotations[Schema.PatternSchemaId] as { regex?: unknown } | undefined)?.regex
  return regex instanceof RegExp && regex.flags === ""
}

const allowsUndefined = (ast: AST.AST): boolean =>
  AST.isUndefinedKeyword(ast) || AST.isVoidKeyword(ast) || (AST.isUnion(ast) && ast.types.some(allowsUndefined)) ||
  (AST.isRefinement(ast) && allowsUndefined(ast.from))

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
