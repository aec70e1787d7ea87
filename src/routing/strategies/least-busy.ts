/** `least_busy`: the target with the fewest calls in flight from this worker first; ties by weight drawn at random. */
import type { Strategy } from "../strategy"
import { weightedOrder } from "./loadbalance"

export const leastBusy: Strategy = {
  order: ({ targets, health, random }) => {
    // A weighted draw first, then a stable sort by load: equal loads keep the drawn order.
    const drawn = weightedOrder(targets, random)
    return drawn.map((d, i) => ({ d, i, load: health.inFlight(d) })).sort((a, b) => a.load - b.load || a.i - b.i).map(({ d }) => d)
  }
}
