/**
 * Checks that wait, without HTTP: the judge's reply format, a request's texts through a
 * policy whose check asks a model (each text once, redactions in the request's order, the
 * first violation in order), a stream held whole until its end, a policy never bound to a
 * router failing closed, and the example module of docs/examples/checks/.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import exampleCheck from "../docs/examples/checks/ticket-ids"
import { type CheckContext, type CheckModule, CheckFailed } from "../src/policy/check"
import { parseVerdict } from "../src/policy/checks/llm"
import { compilePolicy, type Policy, waits, withContext } from "../src/policy/policy"
import { applyInputPoliciesWaiting, applyOutputPoliciesWaiting, MAX_WAITED_TEXTS } from "../src/policy/request"
import type { PolicySpec } from "../src/policy/spec"
import { StreamScanner } from "../src/policy/stream"

const ENV = { defined: (name: string) => name === "guard", modules: new Map<string, CheckModule>([["ticket-ids", exampleCheck]]) }

const policy = (spec: PolicySpec): Policy => {
  const compiled = compilePolicy(spec, ENV)
  if (Either.isLeft(compiled)) throw new Error(`${compiled.left[0]}: ${compiled.left[1]}`)
  return compiled.right
}

/** A judge that says "violation" when the text holds `word`, recording what it was asked. */
const judgeOf = (word: string) => {
  const asked: Array<string> = []
  const context: CheckContext = {
    ask: (_, messages) =>
      Effect.sync(() => {
        // The text it was given, between its delimiters.
        const text = /<text>\n([\s\S]*)\n<\/text>/.exec(String(messages[1]?.content))?.[1] ?? ""
        asked.push(text)
        return JSON.stringify({ violation: text.includes(word) })
      })
  }
  return { asked, context }
}

const medical = (action: PolicySpec["action"], extra: Partial<PolicySpec> = {}) =>
  policy({ name: `medical-${action}`, checks: [{ type: "llm", model: "guard", instruction: "Medical advice?", label: "medical" }], action, ...extra })

describe("the judge's reply", () => {
  it("is a JSON object with a boolean violation, possibly fenced; anything else is no verdict", () => {
    expect(parseVerdict(`{"violation": true, "reason": "dosage"}`)).toBe(true)
    expect(parseVerdict("```json\n{\"violation\": false}\n```")).toBe(false)
    expect(parseVerdict(`{"violation": "yes"}`)).toBeUndefined()
    expect(parseVerdict("yes")).toBeUndefined()
    expect(parseVerdict(`{"violation": tru`)).toBeUndefined()
    // The first verdict counts, whatever follows it; an object that is not one is passed over.
    expect(parseVerdict(`{"violation": true, "reason": "dosage"} and also {"note": "ignore the above"}`)).toBe(true)
    expect(parseVerdict(`{"note": "a } in a string"} {"violation": false}`)).toBe(false)
  })
})

describe("a policy with an llm check", () => {
  it("waits, and the others do not", () => {
    expect(waits([medical("block")])).toBe(true)
    expect(waits([policy({ name: "p", checks: [{ type: "pii" }], action: "block" })])).toBe(false)
  })

  it.effect("asks about each text of a request once (empty ones not at all) and redacts those it finds", () =>
    Effect.gen(function*() {
      const { asked, context } = judgeOf("aspirin")
      const [redactor] = withContext([medical("redact")], context)
      const verdict = yield* applyInputPoliciesWaiting(redactor === undefined ? [] : [redactor], {
        model: "m",
        messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "" }, { role: "user", content: "Is aspirin safe?" }]
      })
      expect(asked.sort()).toEqual(["Be brief.", "Is aspirin safe?"])
      expect(verdict._tag === "Allowed" && verdict.request.messages.map((m) => m.content)).toEqual(["Be brief.", "", "[REDACTED:medical]"])
    }))

  it.effect("stops a request at its first violation in the request's order", () =>
    Effect.gen(function*() {
      const { context } = judgeOf("dose")
      const verdict = yield* applyInputPoliciesWaiting(withContext([medical("block"), medical("redact", { name: "second" })], context), {
        model: "m",
        messages: [{ role: "user", content: "hello" }, { role: "user", content: "what dose?" }]
      })
      expect(verdict).toEqual({ _tag: "Blocked", violation: { policy: "medical-block", found: "medical" } })
    }))

  it.effect("fails closed where no router was bound to it, and a judge's failure is what on_error says", () =>
    Effect.gen(function*() {
      const unbound = yield* applyOutputPoliciesWaiting([medical("block", { on: "output" })], "anything")
      expect(unbound.violation?.found).toMatch(/^medical \(unverified: no model can be asked here \(guard\)/)
      const failing: CheckContext = { ask: () => Effect.fail(new CheckFailed({ reason: "guard failed (timeout)" })) }
      const open = policy({ name: "open", on: "output", checks: [{ type: "llm", model: "guard", instruction: "?", on_error: "pass" }], action: "block" })
      expect(yield* applyOutputPoliciesWaiting(withContext([open], failing), "anything")).toEqual({ text: "anything" })
    }))

  it.effect("holds a stream's text whole, then redacts it once the judge has read it", () =>
    Effect.gen(function*() {
      const { asked, context } = judgeOf("aspirin")
      const scanner = new StreamScanner(withContext([medical("redact", { on: "output" }), policy({ name: "t", on: "output", checks: [{ type: "module", name: "ticket-ids" }], action: "redact" })], context))
      expect(scanner.push("Take aspirin, ").text).toBe("")
      expect(scanner.push("see TCK-1234.").text).toBe("")
      expect(asked).toEqual([])
      expect(yield* scanner.endWaiting()).toEqual({ text: "[REDACTED:medical]" })
      expect(asked).toEqual(["Take aspirin, see TCK-1234."])
    }))
})

describe("the example check module", () => {
  it("finds ticket ids with its prefix option, whole", () => {
    expect(exampleCheck.find("TCK-1234 and INC-99999, not XTCK-1234 or TCK-12", {})).toEqual([{ label: "ticket_id", start: 0, end: 8 }])
    expect(exampleCheck.find("TCK-1234 and INC-99999", { prefix: "INC" })).toEqual([{ label: "ticket_id", start: 13, end: 22 }])
  })
})

describe("a request with more texts than checks that wait may read", () => {
  it.effect("is refused before any judge is asked, naming the policy and the count", () =>
    Effect.gen(function*() {
      const { asked, context } = judgeOf("aspirin")
      const [blocker] = withContext([medical("block")], context)
      const many = Array.from({ length: MAX_WAITED_TEXTS + 1 }, (_, i) => ({ role: "user" as const, content: `message ${i}` }))
      const verdict = yield* applyInputPoliciesWaiting(blocker === undefined ? [] : [blocker], { model: "m", messages: many })
      expect(verdict).toEqual({ _tag: "Blocked", violation: { policy: "medical-block", found: expect.stringContaining(`${MAX_WAITED_TEXTS + 1} texts, more than the ${MAX_WAITED_TEXTS}`) } })
      expect(asked).toEqual([])
      // At the most, every text is read.
      const allowed = yield* applyInputPoliciesWaiting(blocker === undefined ? [] : [blocker], { model: "m", messages: many.slice(1) })
      expect(allowed._tag).toBe("Allowed")
      expect(asked).toHaveLength(MAX_WAITED_TEXTS)
    }))
})

describe("a check module whose find returns a promise it does not declare async", () => {
  it.effect("counts as failed (found, by default), and its rejection is handled: nothing is left to end the worker", () =>
    Effect.gen(function*() {
      let rejected = false
      const sneaky: CheckModule = {
        name: "sneaky",
        // A plain function returning a promise that rejects: it looks synchronous.
        find: () => Promise.reject(new Error("the text was: secret")).finally(() => (rejected = true)) as never
      }
      const compiled = compilePolicy({ name: "sneaky-block", checks: [{ type: "module", name: "sneaky" }], action: "block" }, {
        defined: () => false,
        modules: new Map([["sneaky", sneaky]])
      })
      if (Either.isLeft(compiled)) throw new Error(compiled.left.join(": "))
      expect(waits([compiled.right])).toBe(false)
      const [check] = compiled.right.checks
      expect(check?.find("hello").length).toBe(1)
      // The rejection settles on a later turn; an unhandled one would fail this run.
      yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      expect(rejected).toBe(true)
    }))
})
