/**
 * A key's budget period (billing/keys.ts): the UTC day or month a moment falls in. The
 * last one named is kept rather than a date formatted each request, so the kept one must
 * never be given for a moment outside it, whichever way time moves between calls.
 */
import { describe, expect, it } from "vitest"
import { dayOf, monthOf, periodOf } from "../src/billing/keys"

const iso = (t: number) => new Date(t).toISOString()

// Edges where a kept period goes stale: the last and first millisecond of a day, of a
// 28-, 29-, 30- and 31-day month, and of a year; then back in time, as a late or
// reordered call may be.
const edges = [
  Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1), Date.UTC(2027, 0, 1, 0, 0, 0, 1),
  Date.UTC(2027, 1, 28, 23, 59, 59, 999), Date.UTC(2027, 2, 1),
  Date.UTC(2028, 1, 28, 12), Date.UTC(2028, 1, 29), Date.UTC(2028, 1, 29, 23, 59, 59, 999), Date.UTC(2028, 2, 1),
  Date.UTC(2026, 3, 30, 23, 59, 59, 999), Date.UTC(2026, 4, 1), Date.UTC(2026, 3, 30, 23, 59, 59, 999),
  Date.UTC(2026, 11, 5, 4), Date.UTC(2026, 10, 30, 23, 59, 59, 999), Date.UTC(2026, 11, 5, 4), Date.UTC(1999, 11, 31, 23, 59, 59, 999)
]

describe("budget periods", () => {
  it("names the UTC day and month of every moment, across day, month and year ends, in either direction", () => {
    for (const t of edges) {
      expect([periodOf("day", t), dayOf(t)]).toEqual([iso(t).slice(0, 10), iso(t).slice(0, 10)])
      expect([periodOf("month", t), monthOf(t)]).toEqual([iso(t).slice(0, 7), iso(t).slice(0, 7)])
    }
  })

  it("agrees with the date over two years of moments an irregular step apart", () => {
    const start = Date.UTC(2026, 0, 1)
    // A prime step of a little over 7 hours lands at every hour of the day in turn.
    for (let t = start; t < start + 2 * 366 * 86_400_000; t += 26_777_777) {
      expect(periodOf("day", t)).toBe(iso(t).slice(0, 10))
      expect(periodOf("month", t)).toBe(iso(t).slice(0, 7))
    }
  })
})
