/** Which mode a consensus runs in, and the exploration that keeps feedback coming for every model. */
export type Mode = "cascade" | "parallel" | "full"

/**
 * The caller's mode when given; otherwise, once the task has a learned policy, `full` on a
 * share `explore` of requests (drawn from `random`, a number in [0, 1)) and cascade on the
 * rest; parallel before. Exploration is there because a cascade rarely calls the weaker
 * models, so what is known of them would go stale; parallel calls every model anyway.
 */
export const chooseMode = (requested: Mode | undefined, learned: boolean, explore: number, random: () => number): { readonly mode: Mode; readonly explored: boolean } => {
  if (requested !== undefined) return { mode: requested, explored: false }
  if (!learned) return { mode: "parallel", explored: false }
  if (explore > 0 && random() < explore) return { mode: "full", explored: true }
  return { mode: "cascade", explored: false }
}
