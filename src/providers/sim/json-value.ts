/**
 * A JSON value valid against a JSON schema, for simulated structured output and tool
 * arguments. It covers what structured-output schemas use (OpenAI's strict subset,
 * zod-to-json-schema and Pydantic output): objects, arrays, strings, numbers, integers,
 * booleans, null, enum and const, local $ref, anyOf/oneOf/allOf, and the simple
 * constraints (bounds, multipleOf, lengths, item counts, uniqueItems, common formats).
 * Not `pattern`: no regex is inverted, a string under one may not match it.
 *
 * Values come from the prompt where that is natural (a field named `answer` gets the
 * answer the model worked out, a `city` the place the prompt names), otherwise from a
 * seeded draw, so the same prompt gives the same value.
 */

export interface Filling {
  readonly prompt: string
  /** What the model worked out from the prompt, if anything. */
  readonly answer: { readonly text: string; readonly number: number | undefined } | undefined
  readonly random: () => number
}

type Schema = Readonly<Record<string, unknown>>

const isSchema = (value: unknown): value is Schema => typeof value === "object" && value !== null && !Array.isArray(value)
const numberOf = (value: unknown): number | undefined => (typeof value === "number" && Number.isFinite(value) ? value : undefined)

const STOP_WORDS = new Set(
  ("a about all also an and any are as at be but by can could do does for from give has have how i if in into is it its me " +
    "more my of on or our please should so some tell than that the their them then there these they this to us was we what " +
    "when where which who why will with would you your answer number word words json return list write explain describe " +
    "summarize extract compute calculate find show make get use call check look").split(" ")
)

const isStopWord = (word: string): boolean => STOP_WORDS.has(word.toLowerCase().replace(/['’]s$/, ""))

/** Words of the prompt worth repeating, in order, without duplicates. */
const keywords = (prompt: string): ReadonlyArray<string> => {
  const words = prompt.match(/[\p{L}\p{N}][\p{L}\p{N}'’-]*/gu) ?? []
  return [...new Set(words.filter((w) => !isStopWord(w) && w.length > 1))]
}

/** Names of people, places, things: capitalised words, preferably not at a sentence's start. */
const properNouns = (prompt: string): ReadonlyArray<string> => {
  const inside: Array<string> = []
  const anywhere: Array<string> = []
  const pattern = /(^|[.!?]\s+|\s|["'(])(\p{Lu}[\p{L}'’-]*(?:\s+\p{Lu}[\p{L}'’-]*)*)/gu
  for (const match of prompt.matchAll(pattern)) {
    // Both groups take part in every match (the first may be empty).
    const [, before, found] = match
    if (before === undefined || found === undefined) continue
    const words = found.split(/\s+/).filter((w) => !isStopWord(w))
    if (words.length === 0) continue
    const name = words.join(" ")
    const sentenceStart = match.index === 0 || /[.!?]/.test(before)
    ;(sentenceStart ? anywhere : inside).push(name)
  }
  return [...new Set([...inside, ...anywhere])]
}

const excerpt = (prompt: string, words: number): string => {
  const all = prompt.trim().split(/\s+/).filter((w) => w !== "")
  const text = all.slice(0, words).join(" ")
  return all.length > words ? `${text}…` : text
}

const DATE = "2025-01-15"

const FORMATS: Readonly<Record<string, string>> = {
  "date": DATE,
  "date-time": "2025-01-15T09:30:00Z",
  "time": "09:30:00Z",
  "email": "someone@example.com",
  "uri": "https://example.com/",
  "url": "https://example.com/",
  "uri-reference": "https://example.com/",
  "hostname": "example.com",
  "ipv4": "192.0.2.1",
  "ipv6": "2001:db8::1",
  "uuid": "123e4567-e89b-42d3-a456-426614174000",
  "duration": "PT1H"
}

/** A drawn item; the draw is within the list (`random()` is in [0, 1)), else the first is taken. */
const pick = <A>(items: readonly [A, ...ReadonlyArray<A>], random: () => number, offset = 0): A =>
  items[(Math.floor(random() * items.length) + offset) % items.length] ?? items[0]

class Generator {
  private readonly words: ReadonlyArray<string>
  private readonly names: ReadonlyArray<string>
  private numbersUsed = 0
  private namesUsed = 0
  private wordsUsed = 0
  private readonly numbers: ReadonlyArray<number>

  constructor(private readonly root: Schema, private readonly filling: Filling) {
    this.words = keywords(filling.prompt)
    this.names = properNouns(filling.prompt)
    this.numbers = (filling.prompt.match(/-?\d+(?:\.\d+)?/g) ?? []).map(Number)
  }

  value(schema: unknown, key: string, index: number, depth: number): unknown {
    if (schema === true || !isSchema(schema)) return this.text(key, index, {})
    const resolved = this.resolve(schema, depth)
    if ("const" in resolved) return resolved.const
    if (Array.isArray(resolved.enum) && resolved.enum.length > 0) return this.choose(resolved.enum, index)
    const alternatives = Array.isArray(resolved.anyOf) ? resolved.anyOf : Array.isArray(resolved.oneOf) ? resolved.oneOf : undefined
    if (alternatives !== undefined && alternatives.length > 0) {
      // A real value rather than null when the schema allows both.
      const chosen = alternatives.find((a) => !(isSchema(a) && a.type === "null")) ?? alternatives[0]
      return this.value(chosen, key, index, depth + 1)
    }
    switch (this.typeOf(resolved)) {
      case "object":
        return this.object(resolved, depth)
      case "array":
        return this.array(resolved, key, depth)
      case "integer":
        return this.number(resolved, key, index, true)
      case "number":
        return this.number(resolved, key, index, false)
      case "boolean":
        return this.filling.random() < 0.5
      case "null":
        return null
      default:
        return this.text(key, index, resolved)
    }
  }

  /** $ref (local) and allOf folded into one schema. */
  private resolve(schema: Schema, depth: number): Schema {
    let current = schema
    for (let hops = 0; typeof current.$ref === "string" && hops < 16; hops++) {
      const { $ref, ...rest } = current
      current = { ...this.pointer($ref as string), ...rest }
    }
    if (Array.isArray(current.allOf) && depth < 16) {
      const { allOf, ...rest } = current
      let merged: Record<string, unknown> = {}
      for (const part of [...allOf, rest]) {
        if (!isSchema(part)) continue
        const r = this.resolve(part, depth + 1)
        merged = {
          ...merged,
          ...r,
          properties: { ...(isSchema(merged.properties) ? merged.properties : {}), ...(isSchema(r.properties) ? r.properties : {}) },
          required: [...(Array.isArray(merged.required) ? merged.required : []), ...(Array.isArray(r.required) ? r.required : [])]
        }
      }
      current = merged
    }
    return current
  }

  private pointer(ref: string): Schema {
    if (!ref.startsWith("#")) return {}
    let node: unknown = this.root
    for (const raw of ref.slice(1).split("/").filter((p) => p !== "")) {
      const part = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~")
      node = isSchema(node) ? node[part] : Array.isArray(node) ? node[Number(part)] : undefined
    }
    return isSchema(node) ? node : {}
  }

  private typeOf(schema: Schema): string {
    const type = schema.type
    if (typeof type === "string") return type
    if (Array.isArray(type)) return (type.find((t) => t !== "null") ?? type[0] ?? "string") as string
    if (isSchema(schema.properties) || schema.required !== undefined) return "object"
    if (schema.items !== undefined || schema.prefixItems !== undefined) return "array"
    if (schema.minimum !== undefined || schema.maximum !== undefined) return "number"
    return "string"
  }

  /** An enum member the prompt names, else a seeded one; arrays take distinct members in turn. */
  private choose(options: ReadonlyArray<unknown>, index: number): unknown {
    const prompt = this.filling.prompt.toLowerCase()
    const named = options.findIndex((o) => typeof o === "string" && o.length > 1 && prompt.includes(o.toLowerCase()))
    const start = named >= 0 ? named : Math.floor(this.filling.random() * options.length)
    return options[(start + index) % options.length]
  }

  private object(schema: Schema, depth: number): Record<string, unknown> {
    const properties = isSchema(schema.properties) ? schema.properties : {}
    const out: Record<string, unknown> = {}
    for (const [name, property] of Object.entries(properties)) out[name] = this.value(property, name, 0, depth + 1)
    for (const name of Array.isArray(schema.required) ? schema.required : []) {
      if (typeof name === "string" && !(name in out)) out[name] = this.text(name, 0, {})
    }
    const min = numberOf(schema.minProperties) ?? 0
    for (let i = Object.keys(out).length; i < min && schema.additionalProperties !== false; i++) {
      out[`field_${i + 1}`] = isSchema(schema.additionalProperties)
        ? this.value(schema.additionalProperties, `field_${i + 1}`, i, depth + 1)
        : this.text(`field_${i + 1}`, i, {})
    }
    return out
  }

  private array(schema: Schema, key: string, depth: number): Array<unknown> {
    const min = numberOf(schema.minItems) ?? 0
    const max = numberOf(schema.maxItems) ?? Number.POSITIVE_INFINITY
    // Deep in a recursive schema, as few items as allowed, so that the value ends.
    const count = depth > 4 ? min : Math.min(max, Math.max(min, 2))
    const prefix = Array.isArray(schema.prefixItems) ? schema.prefixItems : []
    const items = schema.items
    const out: Array<unknown> = []
    const seen = new Set<string>()
    for (let i = 0; out.length < count && i < count * 4; i++) {
      const itemSchema = prefix[i] ?? (items === false ? undefined : items)
      if (itemSchema === undefined && i >= prefix.length && items === false) break
      const item = this.value(itemSchema ?? {}, singular(key), i, depth + 1)
      const id = JSON.stringify(item)
      if (schema.uniqueItems === true && seen.has(id)) continue
      seen.add(id)
      out.push(item)
    }
    return out
  }

  private number(schema: Schema, key: string, index: number, integer: boolean): number {
    let low = numberOf(schema.minimum) ?? Number.NEGATIVE_INFINITY
    let high = numberOf(schema.maximum) ?? Number.POSITIVE_INFINITY
    const step = integer ? 1 : 1e-6
    const exMin = numberOf(schema.exclusiveMinimum) ?? (schema.exclusiveMinimum === true ? low : undefined)
    const exMax = numberOf(schema.exclusiveMaximum) ?? (schema.exclusiveMaximum === true ? high : undefined)
    if (exMin !== undefined) low = Math.max(low, integer ? Math.floor(exMin) + 1 : exMin + step * Math.max(1, Math.abs(exMin)))
    if (exMax !== undefined) high = Math.min(high, integer ? Math.ceil(exMax) - 1 : exMax - step * Math.max(1, Math.abs(exMax)))
    if (integer) {
      low = Math.ceil(low)
      high = Math.floor(high)
    }
    let value = this.preferredNumber(key, index, integer) ?? drawBetween(low, high, this.filling.random)
    value = Math.min(high, Math.max(low, value))
    if (integer) value = Math.min(high, Math.max(low, Math.round(value)))
    const multiple = numberOf(schema.multipleOf)
    if (multiple !== undefined && multiple > 0) {
      const up = Math.ceil(value / multiple) * multiple
      value = up <= high ? up : Math.floor(high / multiple) * multiple
      value = Number(value.toPrecision(12))
    }
    return value
  }

  /** The worked-out answer for an answer-like field, else the prompt's numbers in turn. */
  private preferredNumber(key: string, index: number, integer: boolean): number | undefined {
    const answer = this.filling.answer?.number
    if (answer !== undefined && ANSWER_KEY.test(key) && (!integer || Number.isInteger(answer))) return answer + index
    const k = this.numbersUsed
    const base = this.numbers[k % this.numbers.length]
    // The prompt has no number.
    if (base === undefined) return undefined
    this.numbersUsed++
    // Past the prompt's numbers, new ones, so that unique items stay unique.
    const n = base + Math.floor(k / this.numbers.length)
    return integer ? Math.round(n) : n
  }

  private text(key: string, index: number, schema: Schema): string {
    const format = typeof schema.format === "string" ? FORMATS[schema.format] : undefined
    const base = format ?? this.textFor(key, index)
    return fitLength(base, this.filling.prompt, numberOf(schema.minLength) ?? 0, numberOf(schema.maxLength) ?? Number.POSITIVE_INFINITY)
  }

  private textFor(key: string, index: number): string {
    const answer = this.filling.answer
    const k = key.toLowerCase()
    if (answer !== undefined && ANSWER_KEY.test(k)) return index === 0 ? answer.text : `${answer.text} (${index + 1})`
    if (/email/.test(k)) return "someone@example.com"
    if (/url|link|website|href/.test(k)) return "https://example.com/"
    if (/date|day/.test(k)) return DATE
    if (/(^|_)id$|uuid/.test(k)) return `id-${index + 1}`
    if (/lang/.test(k)) return "en"
    if (/city|capital|location|place|destination|country|name|title|person|author|company|subject/.test(k)) {
      const place = /city|capital/.test(k) && answer !== undefined && answer.number === undefined ? answer.text : undefined
      if (place !== undefined) return place
      // Each name-like field takes the next name: "Lyon, in France" fills city and country.
      const names = this.names.length > 0 ? this.names : this.words
      return nth(names, this.namesUsed++) ?? "Example"
    }
    if (/summary|description|text|reason|explanation|content|comment|message|query|question|prompt|note|body|detail/.test(k)) {
      return excerpt(this.filling.prompt, 24) || "No details given."
    }
    // Each field the next word, so that fields (and an array's items) differ.
    const word = nth(this.words, this.wordsUsed++)
    if (word !== undefined) return word
    return pick(["alpha", "beta", "gamma"], this.filling.random, index)
  }
}

/** The k-th of a list, numbered once the list runs out: "Paris", "France", "Paris 2"; undefined for an empty list. */
const nth = (list: ReadonlyArray<string>, k: number): string | undefined => {
  const item = list[k % list.length]
  if (item === undefined) return undefined
  return k < list.length ? item : `${item} ${Math.floor(k / list.length) + 1}`
}

const ANSWER_KEY = /answer|result|value|solution|output|total|sum|product|response/i

const singular = (key: string): string => key.replace(/ies$/, "y").replace(/s$/, "")

const drawBetween = (low: number, high: number, random: () => number): number => {
  const from = Number.isFinite(low) ? low : Number.isFinite(high) ? Math.min(0, high) : 0
  const to = Number.isFinite(high) ? high : from + 100
  return from + random() * (to - from)
}

/** Longer with the prompt's words (then the text again), shorter by cutting. */
const fitLength = (text: string, prompt: string, min: number, max: number): string => {
  let out = [...text].length < min && prompt.trim() !== "" ? `${text} ${prompt.trim()}` : text
  while ([...out].length < min) out = `${out} ${text || "x"}`
  const chars = [...out]
  return chars.length > max ? chars.slice(0, max).join("") : out
}

/** A value valid against `schema` (a JSON schema), drawn from the prompt where natural. */
export const valueForSchema = (schema: unknown, filling: Filling): unknown =>
  new Generator(isSchema(schema) ? schema : {}, filling).value(schema, "", 0, 0)
