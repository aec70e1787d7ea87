/** `fallback`: the targets in the order the config lists them. */
import type { Strategy } from "../strategy"

export const fallback: Strategy = { order: ({ targets }) => targets.map((t) => t.deployment) }
