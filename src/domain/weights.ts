/**
 * How much a model's answer weighs in a vote, from what is known of its accuracy: here, below
 * both the config (a model's declared `accuracy`) and the consensus engine (learned ones).
 */

/**
 * A voter's weight from its accuracy: log-odds, optimal for independent voters
 * (weighted majority), generalised to `choices` possible answers. A model no better than
 * chance gets no say.
 */
export const reliabilityWeight = (accuracy: number, choices = 2): number => {
  const p = Math.min(Math.max(accuracy, 1e-6), 1 - 1e-6)
  return Math.max(0, Math.log(((choices - 1) * p) / (1 - p)))
}
