/**
 * Content policies on their own, without HTTP: what each built-in check finds (and what it
 * must not), how a policy's action treats findings, a request's texts through the input
 * policies, and an answer streamed through the output policies chunk by chunk.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import fc from "fast-check"
import { luhn } from "../src/policy/checks/card"
import { ibanChecksum } from "../src/policy/checks/iban"
import { compilePolicy, inspect, policiesFor, policiesOf, type Policy, redact } from "../src/policy/policy"
import { applyInputPolicies, applyOutputPolicies } from "../src/policy/request"
import { PolicySpec } from "../src/policy/spec"
import { StreamScanner } from "../src/policy/stream"
import type { ChatCompletionRequest } from "../src/protocol/chat-request"

const policy = (spec: PolicySpec): Policy => {
  const compiled = compilePolicy(spec)
  if (Either.isLeft(compiled)) throw new Error(`${compiled.left[0]}: ${compiled.left[1]}`)
  return compiled.right
}

const pii = (action: PolicySpec["action"], extra: Partial<PolicySpec> = {}) =>
  policy({ name: `pii-${action}`, checks: [{ type: "pii", default_country: "US" }], action, ...extra })

const labels = (p: Policy, text: string) => inspect(p, text).map((f) => f.label)

// A key shaped like OpenAI's, made up here: it authenticates nothing.
const FAKE_KEY = "sk-proj-" + "Zq3".repeat(12)

describe("built-in checks", () => {
  const all = pii("block")

  it("finds e-mail addresses, and not an @ without a domain", () => {
    expect(labels(all, "write to jane.doe+x@mail.example.co.uk today")).toEqual(["email"])
    expect(labels(all, "at @home or user@localhost")).toEqual([])
  })

  it("finds phone numbers in international and the default country's national formats", () => {
    expect(labels(all, "call +44 20 7946 0958")).toEqual(["phone"])
    expect(labels(all, "call (415) 555-0132 after 5")).toEqual(["phone"])
    // Without a default country, a national number is nobody's.
    const noCountry = policy({ name: "p", checks: [{ type: "pii", kinds: ["phone"] }], action: "block" })
    expect(labels(noCountry, "call (415) 555-0132")).toEqual([])
    expect(labels(noCountry, "call +1 415 555 0132")).toEqual(["phone"])
  })

  it("finds card numbers only when the Luhn checksum holds", () => {
    expect(luhn("4111111111111111")).toBe(true)
    expect(luhn("4111111111111112")).toBe(false)
    expect(luhn("79927398713")).toBe(true)
    expect(labels(all, "card 4111 1111 1111 1111, exp 12/29")).toEqual(["card"])
    expect(labels(all, "card 5555-5555-5555-4444")).toEqual(["card"])
    expect(labels(all, "order 4111 1111 1111 1112")).toEqual([])
    expect(labels(all, "version 3.14.159, on 2024-01-15")).toEqual([])
  })

  it("finds IBANs, whole or in groups, only when the ISO 13616 check holds (a check type of its own file)", () => {
    const banks = policy({ name: "no-ibans", checks: [{ type: "iban" }], action: "redact" })
    expect(ibanChecksum("DE89370400440532013000")).toBe(true)
    expect(ibanChecksum("DE89370400440532013001")).toBe(false)
    expect(labels(banks, "pay to DE89 3704 0044 0532 0130 00 by Friday")).toEqual(["iban"])
    expect(labels(banks, "GB82WEST12345698765432")).toEqual(["iban"])
    expect(labels(banks, "FR14 2004 1010 0505 0001 3M02 606")).toEqual(["iban"])
    expect(labels(banks, "pay to DE89 3704 0044 0532 0130 01")).toEqual([])
    expect(labels(banks, "part AB12 CDEF GHIJ KLMN shipped")).toEqual([])
    expect(redact("IBAN DE89 3704 0044 0532 0130 00.", inspect(banks, "IBAN DE89 3704 0044 0532 0130 00."))).toBe("IBAN [REDACTED:iban].")
    // The config takes it from the registry, with nothing else to change.
    expect(Schema.decodeUnknownEither(PolicySpec)({ name: "p", checks: [{ type: "iban" }], action: "block" })._tag).toBe("Right")
    expect(Schema.decodeUnknownEither(PolicySpec)({ name: "p", checks: [{ type: "ibam" }], action: "block" })._tag).toBe("Left")
  })

  it("finds keys and tokens by their shapes, and not ordinary long words", () => {
    expect(labels(all, `my key is ${FAKE_KEY}`)).toEqual(["openai_key"])
    expect(labels(all, `sk-ant-${"a1B2".repeat(8)}`)).toEqual(["anthropic_key"])
    expect(labels(all, "AKIAIOSFODNN7EXAMPLE")).toEqual(["aws_access_key"])
    expect(labels(all, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")).toEqual(["jwt"])
    expect(labels(all, "-----BEGIN RSA PRIVATE KEY-----")).toEqual(["private_key"])
    expect(labels(all, "supercalifragilisticexpialidocious antidisestablishmentarianism")).toEqual([])
  })

  it("matches blocklisted words whole, in any case, across any whitespace", () => {
    const words = policy({ name: "words", checks: [{ type: "blocklist", words: ["bluebird", "project x"] }], action: "block" })
    expect(labels(words, "About BlueBird and Project\n X.")).toEqual(["blocklisted", "blocklisted"])
    expect(labels(words, "bluebirds and project xyz")).toEqual([])
  })

  it("runs an operator's regex under the label it is given", () => {
    const ids = policy({ name: "ids", checks: [{ type: "regex", pattern: "PRJ-[0-9]{4}", label: "project id" }], action: "redact" })
    expect(redact("see PRJ-1234 and PRJ-99", inspect(ids, "see PRJ-1234 and PRJ-99"))).toBe("see [REDACTED:project id] and PRJ-99")
  })
})

describe("compiling a policy", () => {
  const fails = (spec: PolicySpec) => {
    const compiled = compilePolicy(spec)
    return Either.isLeft(compiled) ? compiled.left : undefined
  }

  it("names the field that is wrong", () => {
    expect(fails({ name: "r", checks: [{ type: "pii" }], action: "route" })).toEqual(["route_to", expect.stringContaining("needs")])
    expect(fails({ name: "r", checks: [{ type: "pii" }], action: "block", route_to: ["local"] })).toEqual(["route_to", expect.stringContaining("only action route")])
    expect(fails({ name: "r", on: "output", checks: [{ type: "pii" }], action: "route", route_to: ["local"] })).toEqual(["on", expect.stringContaining("cannot be routed")])
    expect(fails({ name: "r", checks: [{ type: "pii" }, { type: "regex", pattern: "([a-z" }], action: "block" })).toEqual(["checks[1].pattern", expect.stringContaining("not a valid regular expression")])
    expect(fails({ name: "r", checks: [{ type: "pii", default_country: "ZZ" }], action: "block" })).toEqual(["checks[0].default_country", expect.stringContaining("ZZ")])
    expect(fails({ name: "r", checks: [{ type: "pii" }], action: "block", default_on: false, models: ["m"] })).toEqual(["models", expect.stringContaining("default_on: false")])
  })
})

describe("which policies a request is under", () => {
  const everywhere = pii("block")
  const forSupport = pii("redact", { name: "support-only", models: ["support"] })
  const keysOnly = pii("block", { name: "keys-only", default_on: false })
  const all = [everywhere, forSupport, keysOnly]
  const names = (found: { readonly policies: ReadonlyArray<Policy> }) => found.policies.map((p) => p.name)

  it("gives the gateway's and the model's by themselves, a default_on: false one only to the keys naming it", () => {
    expect(policiesFor(all, "other").map((p) => p.name)).toEqual(["pii-block"])
    expect(policiesFor(all, "support").map((p) => p.name)).toEqual(["pii-block", "support-only"])
    expect(names(policiesOf(all, "other", []))).toEqual(["pii-block"])
    expect(names(policiesOf(all, "other", ["keys-only"]))).toEqual(["pii-block", "keys-only"])
    // A key's policy applies whatever its models: the key is what it is attached to; each policy once, in the config's order.
    expect(names(policiesOf(all, "other", ["keys-only", "support-only", "pii-block"]))).toEqual(["pii-block", "support-only", "keys-only"])
  })

  it("names a key's policy the config does not define", () => {
    expect(policiesOf(all, "other", ["gone"])).toMatchObject({ missing: "gone" })
  })
})

const request = (messages: ChatCompletionRequest["messages"]): ChatCompletionRequest => ({ model: "m", messages })

describe("input policies on a request", () => {
  it("blocks naming the policy and what it found, never the text", () => {
    const verdict = applyInputPolicies([pii("block")], request([{ role: "user", content: `use ${FAKE_KEY} and mail me at a@b.io` }]))
    expect(verdict._tag).toBe("Blocked")
    if (verdict._tag !== "Blocked") return
    expect(verdict.violation.policy).toBe("pii-block")
    expect(verdict.violation.found).toMatch(/openai_key|email/)
    expect(JSON.stringify(verdict)).not.toContain(FAKE_KEY)
    expect(JSON.stringify(verdict)).not.toContain("a@b.io")
  })

  it("redacts every text of the request: contents, text parts and tool-call arguments, leaving the original untouched", () => {
    const original = request([
      { role: "system", content: "Support bot." },
      { role: "user", content: [{ type: "text", text: "card 4111 1111 1111 1111" }, { type: "image_url", image_url: { url: "https://example.com/a.png" } }] },
      { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "mail", arguments: "{\"to\":\"jane@example.com\"}" } }] },
      { role: "tool", tool_call_id: "c1", content: "sent" }
    ])
    const before = JSON.stringify(original)
    const verdict = applyInputPolicies([pii("redact")], original)
    expect(JSON.stringify(original)).toBe(before)
    expect(verdict._tag).toBe("Allowed")
    if (verdict._tag !== "Allowed") return
    expect(verdict.applied).toEqual(["pii-redact"])
    expect(verdict.routeTo).toBeUndefined()
    expect(verdict.request.messages).toEqual([
      { role: "system", content: "Support bot." },
      { role: "user", content: [{ type: "text", text: "card [REDACTED:card]" }, { type: "image_url", image_url: { url: "https://example.com/a.png" } }] },
      { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "mail", arguments: "{\"to\":\"[REDACTED:email]\"}" } }] },
      { role: "tool", tool_call_id: "c1", content: "sent" }
    ])
  })

  it("passes a clean request through as it is", () => {
    const clean = request([{ role: "user", content: "What is 2 + 2?" }])
    const verdict = applyInputPolicies([pii("block"), pii("redact")], clean)
    expect(verdict).toEqual({ _tag: "Allowed", request: clean, routeTo: undefined, applied: [] })
  })

  it("routes only where every routing policy that fired allows, and ignores those that did not fire", () => {
    const local = pii("route", { name: "pii-local", route_to: ["local-a", "local-b", "eu"] })
    const eu = policy({ name: "eu-only", checks: [{ type: "regex", pattern: "GDPR" }], action: "route", route_to: ["eu", "local-b"] })
    const never = policy({ name: "never", checks: [{ type: "blocklist", words: ["zebra"] }], action: "route", route_to: ["nowhere"] })
    const verdict = applyInputPolicies([local, eu, never], request([{ role: "user", content: "GDPR request from jane@example.com" }]))
    expect(verdict).toMatchObject({ _tag: "Allowed", routeTo: ["local-b", "eu"], applied: ["pii-local", "eu-only"] })
  })

  it("leaves output-only policies out of the request", () => {
    const verdict = applyInputPolicies([pii("block", { on: "output" })], request([{ role: "user", content: "a@b.io" }]))
    expect(verdict._tag).toBe("Allowed")
    expect(applyOutputPolicies([pii("block", { on: "output" })], "reach me at a@b.io").violation?.policy).toBe("pii-block")
  })
})

/** The text a client sees when `text` is streamed in `chunks` through the scanner. */
const streamed = (policies: ReadonlyArray<Policy>, chunks: ReadonlyArray<string>) => {
  const scanner = new StreamScanner(policies)
  let out = ""
  for (const chunk of chunks) {
    const released = scanner.push(chunk)
    out += released.text
    if (released.violation !== undefined) return { out, violation: released.violation }
  }
  const last = scanner.end()
  return { out: out + last.text, violation: last.violation }
}

const everyChar = (text: string) => [...text]

describe("output policies on a stream", () => {
  const card = "4111 1111 1111 1111"
  const answer = `Your card ${card} is on file; write to jane@example.com for help.`

  it("redacts a card number streamed one character at a time", () => {
    const { out, violation } = streamed([pii("redact", { on: "output" })], everyChar(answer))
    expect(violation).toBeUndefined()
    expect(out).toBe("Your card [REDACTED:card] is on file; write to [REDACTED:email] for help.")
  })

  it("cuts the stream before any part of a blocked finding reaches the client", () => {
    const { out, violation } = streamed([pii("block", { on: "output" })], everyChar(answer))
    expect(violation).toEqual({ policy: "pii-block", found: "card" })
    expect(answer.startsWith(out)).toBe(true)
    expect(out).not.toContain("4111")
  })

  it("releases text as it comes once it is further back than any finding can reach", () => {
    const p = policy({ name: "ids", on: "output", checks: [{ type: "regex", pattern: "PRJ-[0-9]{4}", max_match: 8 }], action: "redact" })
    const scanner = new StreamScanner([p])
    expect(scanner.push("0123456789").text).toBe("01")
    expect(scanner.push("abc").text).toBe("234")
    expect(scanner.end().text).toBe("56789abc")
  })

  // Whatever the chunking, the client reads what redacting the whole answer at once gives.
  it("redacts the same under any chunking", () => {
    const piece = fc.constantFrom("card 4111 1111 1111 1111", "a@b.io", "call +44 20 7946 0958", FAKE_KEY, "hello", "the answer is 42", "\n", " ")
    const chunking = fc.array(piece, { minLength: 1, maxLength: 12 }).chain((pieces) => {
      const text = pieces.join(" ")
      return fc.tuple(fc.constant(text), fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, text.length - 1) }), { maxLength: 20 }))
    })
    const p = pii("redact", { on: "output" })
    fc.assert(
      fc.property(chunking, ([text, cuts]) => {
        const points = [0, ...[...cuts].sort((a, b) => a - b), text.length]
        const chunks = points.slice(1).map((end, i) => text.slice(points[i], end))
        expect(streamed([p], chunks).out).toBe(redact(text, inspect(p, text)))
      }),
      { seed: 13, numRuns: 300 }
    )
  })
})
