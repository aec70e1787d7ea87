/**
 * A worker's cache of key facts (billing/spend.ts): kept for a second, forgotten on an
 * admin change, and never put back by a read that began before the change.
 */
import { describe, expect, it } from "vitest"
import { KEY_FACTS_TTL_MS, KeyFactsCache } from "../src/billing/spend"
import type { KeyFacts } from "../src/billing/keys"

const facts = (policies: ReadonlyArray<string>): KeyFacts => ({
  id: "key_1", hash: "0".repeat(64), prefix: "qk-abcdef", tags: [], policies, models: null, needsCost: false, budgetPeriod: "month", revoked: false
})

describe("the key facts cache", () => {
  it("keeps facts for a second", () => {
    const cache = new KeyFactsCache()
    cache.set("h", facts([]), 1_000, cache.generation)
    expect(cache.get("h", 1_000 + KEY_FACTS_TTL_MS - 1)).toEqual(facts([]))
    expect(cache.get("h", 1_000 + KEY_FACTS_TTL_MS)).toBeUndefined()
  })

  it("does not keep what a read begun before a forget brings back: the admin change wins", () => {
    const cache = new KeyFactsCache()
    // A read starts, an admin update forgets the key, then the read's (older) facts arrive.
    const begun = cache.generation
    cache.forget("h")
    cache.set("h", facts([]), 1_000, begun)
    expect(cache.get("h", 1_001)).toBeUndefined()
    // A read begun after the forget is kept.
    cache.set("h", facts(["mask-email"]), 1_002, cache.generation)
    expect(cache.get("h", 1_003)?.policies).toEqual(["mask-email"])
  })
})
