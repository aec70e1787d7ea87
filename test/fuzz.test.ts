/**
 * Property-based fuzzing of the two endpoints that reach providers (see test/support/fuzz.ts):
 * a few hundred generated and mutated bodies, seeded so that a failure replays. `npm run fuzz`
 * runs 10,000 (bench/fuzz.ts).
 */
import { describe, expect, it } from "vitest"
import { runFuzz } from "./support/fuzz"

describe("fuzzed bodies against a running gateway", () => {
  it("get a 2xx or an OpenAI-shaped 4xx, forward nothing invalid, and leave every model answering", async () => {
    const report = await runFuzz({ runs: 400, seed: 20261203 })
    expect(report.problems).toEqual([])
    expect(report.sent).toBe(400)
    // Not vacuous: a good share were valid and answered, a good share refused, and the fakes were reached.
    const ok = (report.statuses["200"] ?? 0)
    const refused = Object.entries(report.statuses).filter(([s]) => s.startsWith("4")).reduce((n, [, k]) => n + k, 0)
    expect(ok).toBeGreaterThan(40)
    expect(refused).toBeGreaterThan(100)
    expect(report.upstreamRequests).toBeGreaterThan(40)
  }, 60_000)
})
