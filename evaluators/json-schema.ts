/**
 * json_schema: a gate. Each candidate's content (a fenced ```json block or bare JSON) is
 * parsed and validated with ajv against `options.schema`, else the request's
 * `response_format.json_schema.schema`; with neither, valid JSON passes. Invalid answers
 * score 0 and are excluded from the vote.
 */
import { Either } from "effect"
import type { Evaluator } from "../src/consensus/evaluator"
import { compileSchema, parseJsonAnswer } from "../src/consensus/json-answer"

const evaluator: Evaluator = {
  name: "json_schema",
  description: "Gate: the answer is JSON that validates against the request's JSON schema",
  gate: true,
  evaluate: ({ request, candidates, options }) => {
    const format = request.response_format
    const schema = options.schema ?? (format?.type === "json_schema" ? format.json_schema.schema : undefined)
    const validate = schema === undefined ? undefined : compileSchema(schema)
    if (validate !== undefined && Either.isLeft(validate)) throw new Error(`invalid JSON schema: ${validate.left}`)
    return candidates.map((c) => {
      // A tool call is not the answer response_format describes.
      if (c.tool_calls !== undefined) return 1
      const parsed = parseJsonAnswer(c.content)
      if (!parsed.ok) return 0
      return validate === undefined || validate.right(parsed.value) ? 1 : 0
    })
  }
}

export default evaluator
