/**
 * Deterministic draws for simulated models: the same prompt to the same model gives the
 * same answer (and the same mistake), so that demos can be repeated and tests can rely
 * on what a model says without mocking it.
 */

/** FNV-1a over the parts, separated so that ("ab", "c") and ("a", "bc") differ. */
export const hashOf = (...parts: ReadonlyArray<string | number>): number => {
  let hash = 0x811c9dc5
  for (const part of parts) {
    const text = `${String(part)}\u0000`
    for (let i = 0; i < text.length; i++) {
      hash ^= text.charCodeAt(i)
      hash = Math.imul(hash, 0x01000193)
    }
  }
  return hash >>> 0
}

/** mulberry32: a small, well-mixed generator of numbers in [0, 1). */
export const seededRandom = (seed: number): () => number => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
