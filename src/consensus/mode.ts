/** Which mode a consensus runs in, and the exploration that keeps feedback coming for every model. */
export type Mode = "cascade" | "parallel" | "full"

/**
 * The caller's mode when given; otherwise `full` on a share `explore` of requests (drawn
 * from `random`, a number in [0, 1)), else cascade once the task has a learned policy and
 * parallel before.
 */
export const chooseMode = (requested: Mode | undefined, learned: boolean, explore: number, random: () => number): { readonly mode: Mode; readonly explored: boolean } => {
  if (requested !== undefined) return { mode: requested, explored: false }
  if (explore > 0 && random() < explore) return { mode: "full", explored: true }
  return { mode: learned ? "cascade" : "parallel", explored: false }
}
