/** A value that satisfies a (simple) JSON schema: what a fake model "answers" in JSON mode. */
export const sampleFor = (schema: any): unknown => {
  switch (schema?.type) {
    case "object": {
      const out: Record<string, unknown> = {}
      for (const [key, sub] of Object.entries(schema.properties ?? {})) out[key] = sampleFor(sub)
      return out
    }
    case "array":
      return [sampleFor(schema.items)]
    case "string":
      return schema.enum?.[0] ?? "Paris"
    case "integer":
    case "number":
      return 42
    case "boolean":
      return true
    default:
      return {}
  }
}

/** Words of a text, each with its trailing space: how fakes split a stream. */
export const pieces = (text: string): Array<string> => text.match(/\S+\s*/g) ?? []
