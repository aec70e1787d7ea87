/**
 * What a fan-out may cost before it starts. Each call's worst case is its prompt
 * (counted with a tokenizer) plus its output ceiling, at the model's price; models are
 * kept in order of trust while they fit `max_cost_usd`, and every call is capped at the
 * output it was priced for, so the ceiling holds for what is actually spent.
 * Amounts are integer micro-dollars.
 */

export interface Fit {
  readonly kept: ReadonlyArray<string>
  readonly skipped: ReadonlyArray<{ readonly model: string; readonly reason: string }>
  /** The cheapest estimate, for saying why nothing fits. */
  readonly cheapestMicroUsd: number | undefined
}

/** Keeps models (most trusted first) while their estimates fit the ceiling. */
export const fitBudget = (
  models: ReadonlyArray<string>,
  weightOf: (model: string) => number,
  estimate: (model: string) => number | undefined,
  ceilingMicroUsd: number
): Fit => {
  const byTrust = [...models].sort((a, b) => weightOf(b) - weightOf(a))
  const kept: Array<string> = []
  const skipped: Array<{ model: string; reason: string }> = []
  let spent = 0
  let cheapest: number | undefined
  for (const model of byTrust) {
    const cost = estimate(model)
    if (cost === undefined) {
      skipped.push({ model, reason: "no price is configured, so its cost cannot be bounded" })
      continue
    }
    cheapest = cheapest === undefined ? cost : Math.min(cheapest, cost)
    if (spent + cost > ceilingMicroUsd) {
      skipped.push({ model, reason: `its estimated cost ($${(cost / 1e6).toFixed(6)}) does not fit max_cost_usd` })
      continue
    }
    spent += cost
    kept.push(model)
  }
  return { kept: models.filter((m) => kept.includes(m)), skipped, cheapestMicroUsd: cheapest }
}
