/** `cheapest`: the target on which this request costs least first (its worst case, by the prices in force). */
import { sortedBy, type Strategy } from "../strategy"

export const cheapest: Strategy = { order: ({ targets, costMicros }) => sortedBy(targets, (t) => costMicros(t.deployment)) }
