import { Either, type ParseResult, Schema } from "effect"

/**
 * Checks a value against a schema without rebuilding it, for wire types whose decoded
 * and encoded forms are the same: the value comes back as it is, unknown fields
 * included (which pass-through needs), at a quarter of the cost of a decode. Only a
 * value that fails is decoded, for the error that says where.
 */
export const validator = <A>(schema: Schema.Schema<A, A>) => {
  const is = Schema.is(schema)
  const decode = Schema.decodeUnknownEither(schema)
  return (value: unknown): Either.Either<A, ParseResult.ParseError> => (is(value) ? Either.right(value) : decode(value))
}
