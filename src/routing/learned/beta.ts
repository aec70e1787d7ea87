/**
 * Draws from a Beta distribution, for Thompson sampling. Randomness is an argument, so a
 * seeded simulation replays exactly. Gamma draws by Marsaglia and Tsang's method (2000),
 * normal draws by Box–Muller: a few lines each, where a statistics library would bring
 * dozens of packages for one function.
 */

const normal = (random: () => number): number => {
  const u = 1 - random()
  const v = random()
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
}

const gamma = (shape: number, random: () => number): number => {
  // Shapes below 1 by the boost Gamma(a) = Gamma(a + 1) · U^(1/a).
  if (shape < 1) return gamma(shape + 1, random) * Math.pow(1 - random(), 1 / shape)
  const d = shape - 1 / 3
  const c = 1 / Math.sqrt(9 * d)
  for (;;) {
    let x: number
    let v: number
    do {
      x = normal(random)
      v = 1 + c * x
    } while (v <= 0)
    v = v * v * v
    const u = 1 - random()
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v
  }
}

export const sampleBeta = (alpha: number, beta: number, random: () => number): number => {
  const x = gamma(alpha, random)
  const y = gamma(beta, random)
  return x + y === 0 ? 0.5 : x / (x + y)
}
