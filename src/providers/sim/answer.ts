/**
 * What a simulated model says to a request when it has no fixed answers: arithmetic
 * worked out, a few facts, otherwise an answer that repeats the question; as JSON when
 * `response_format` asks for it, as a tool call when `tool_choice` requires one (or the
 * prompt plainly asks for a tool). Each model words its answers its own way, and is
 * sometimes wrong (its `mistake_rate`), deterministically for a given prompt, so that a
 * consensus fan-out over the demo fleet has a mistake to correct.
 */
import { contentText, type ChatCompletionRequest, type FunctionTool, type Message } from "../../protocol/chat-request"
import type { SimStyle } from "../../config/gateway-config"
import { findArithmetic, formatNumber } from "./arithmetic"
import { findFact } from "./facts"
import { valueForSchema } from "./json-value"
import { hashOf, seededRandom } from "./seed"

export type Reply =
  | { readonly kind: "text"; readonly content: string }
  | { readonly kind: "tool_call"; readonly name: string; readonly arguments: string }

export interface Persona {
  readonly id: string
  readonly style: SimStyle
  readonly mistakeRate: number
}

/** An answer worked out from the prompt: what it is, and how to say it in a sentence. */
interface Worked {
  readonly text: string
  readonly number: number | undefined
  readonly sentence: string
}

const lastUserText = (messages: ReadonlyArray<Message>): string => {
  const lastUser = [...messages].reverse().find((message) => message.role === "user")
  return contentText((lastUser ?? messages.at(-1))?.content)
}

/** The answer the prompt asks for, right or (when `mistaken`) plausibly wrong. */
const workOut = (prompt: string, mistaken: boolean, random: () => number): Worked | undefined => {
  const arithmetic = findArithmetic(prompt)
  if (arithmetic !== undefined) {
    // Off by one, the commonest slip in mental arithmetic.
    const value = mistaken ? arithmetic.value + (random() < 0.5 ? -1 : 1) : arithmetic.value
    const text = formatNumber(value)
    return { text, number: value, sentence: `${arithmetic.expression} = ${text}` }
  }
  const fact = findFact(prompt)
  if (fact !== undefined) {
    const text = mistaken ? fact.wrong : fact.answer
    return { text, number: undefined, sentence: fact.statement(text) }
  }
  return undefined
}

const quote = (prompt: string): string => {
  const flat = prompt.replace(/\s+/g, " ").trim()
  return flat.length > 160 ? `${flat.slice(0, 157)}…` : flat
}

/**
 * In the model's own words. Every wording of a worked-out answer normalizes to the same
 * answer for consensus ("391", "The answer is 391.", "17 × 23 = 391, so the answer is 391.").
 */
const say = (persona: Persona, prompt: string, worked: Worked | undefined): string => {
  if (worked !== undefined) {
    switch (persona.style) {
      case "terse":
        return worked.text
      case "sentence":
        return `The answer is ${worked.text}.`
      case "explained":
        return `${worked.sentence}, so the answer is ${worked.text}.`
    }
  }
  const asked = quote(prompt)
  switch (persona.style) {
    case "terse":
      return `Simulated reply to "${asked}".`
    case "sentence":
      return `You asked: "${asked}". This is a simulated answer from ${persona.id}.`
    case "explained":
      return `You asked: "${asked}". ${persona.id} is a simulated model: it works out arithmetic and a few facts ` +
        `(capitals, for example) from the prompt, and repeats anything else back.`
  }
}

const nameWords = (name: string): ReadonlyArray<string> =>
  name.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase().split(/[^a-z0-9]+/)
    .filter((w) => w.length > 2 && !GENERIC_VERBS.has(w))

const GENERIC_VERBS = new Set(["get", "set", "fetch", "list", "find", "create", "update", "delete", "make", "run", "call", "lookup", "search", "tool", "function", "the", "for"])

/** The tool whose name the prompt mentions ("weather" for get_weather), if any. */
const toolAskedFor = (tools: ReadonlyArray<FunctionTool>, prompt: string): FunctionTool | undefined => {
  const text = prompt.toLowerCase()
  return tools.find((tool) => nameWords(tool.function.name).some((w) => new RegExp(`\\b${w}`).test(text)))
}

/** Which tool to call, or none: what `tool_choice` requires, or what the prompt plainly asks for. */
const chooseTool = (request: ChatCompletionRequest, prompt: string): FunctionTool | undefined => {
  const tools = request.tools ?? []
  const choice = request.tool_choice ?? "auto"
  if (tools.length === 0 || choice === "none") return undefined
  if (typeof choice === "object") return tools.find((t) => t.function.name === choice.function.name)
  if (choice === "required") return toolAskedFor(tools, prompt) ?? tools[0]
  // "auto": after a tool's result the model answers, as real models do, instead of calling again.
  if (request.messages.at(-1)?.role === "tool") return undefined
  return toolAskedFor(tools, prompt)
}

/** After a tool call, an answer that uses its result. */
const afterToolResult = (request: ChatCompletionRequest, persona: Persona): string | undefined => {
  const last = request.messages.at(-1)
  if (last?.role !== "tool") return undefined
  let name = "the tool"
  for (const message of request.messages) {
    if (message.role !== "assistant") continue
    const call = message.tool_calls?.find((c) => c.id === last.tool_call_id)
    if (call !== undefined) name = call.function.name
  }
  const result = quote(contentText(last.content))
  return persona.style === "terse" ? result : `According to ${name}: ${result}`
}

/**
 * One choice of a reply. `index` is the choice's index (for `n` > 1): each choice is
 * drawn on its own, as a model sampling n times would.
 */
export const simulatedReply = (request: ChatCompletionRequest, persona: Persona, index: number): Reply => {
  const prompt = lastUserText(request.messages)
  const own = seededRandom(hashOf(persona.id, prompt, index))
  const mistaken = own() < persona.mistakeRate
  const worked = workOut(prompt, mistaken, own)
  // Shared by every model: correct models give the same JSON for the same prompt.
  const filling = { prompt, answer: worked, random: seededRandom(hashOf("json", prompt)) }

  const tool = chooseTool(request, prompt)
  if (tool !== undefined) {
    const parameters = tool.function.parameters ?? { type: "object", properties: {} }
    return { kind: "tool_call", name: tool.function.name, arguments: JSON.stringify(valueForSchema(parameters, filling)) }
  }
  const format = request.response_format
  if (format?.type === "json_schema") {
    const value = valueForSchema(format.json_schema.schema ?? { type: "object" }, filling)
    return { kind: "text", content: JSON.stringify(value, null, persona.style === "explained" ? 2 : undefined) }
  }
  if (format?.type === "json_object") {
    const value = worked === undefined ? { answer: say(persona, prompt, undefined) } : { answer: worked.number ?? worked.text }
    return { kind: "text", content: JSON.stringify(value) }
  }
  return { kind: "text", content: afterToolResult(request, persona) ?? say(persona, prompt, worked) }
}
