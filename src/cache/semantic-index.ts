/**
 * Requests that mean the same: the embeddings of past requests' messages, searched by
 * cosine similarity. Only requests alike in everything but their messages' wording are
 * compared (same tenant, model, tools, sampling: the `bucket`), so a near match never
 * serves an answer given under other parameters. Bounded: the oldest entries go first.
 */

interface Entry {
  readonly bucket: string
  readonly vector: Float32Array
  /** The exact cache key the answer is stored under. */
  readonly key: string
  readonly expiresAt: number
}

const unit = (vector: ReadonlyArray<number>): Float32Array => {
  let squares = 0
  for (const x of vector) squares += x * x
  const norm = Math.sqrt(squares) || 1
  return Float32Array.from(vector, (x) => x / norm)
}

/** Callers compare vectors of one length; past the end of `b` its components count as 0. */
const dot = (a: Float32Array, b: Float32Array): number => a.reduce((s, x, i) => s + x * (b[i] ?? 0), 0)

export class SemanticIndex {
  // Insertion order is age order: eviction takes from the front.
  private readonly entries = new Map<string, Entry>()

  constructor(private readonly maxEntries: number, private readonly now: () => number = Date.now) {}

  add(bucket: string, vector: ReadonlyArray<number>, key: string, ttlMs: number): void {
    this.entries.delete(key)
    this.entries.set(key, { bucket, vector: unit(vector), key, expiresAt: this.now() + ttlMs })
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break
      this.entries.delete(oldest)
    }
  }

  /** The key of the most similar live request in the bucket, if it reaches the threshold. */
  nearest(bucket: string, vector: ReadonlyArray<number>, threshold: number): { key: string; similarity: number } | undefined {
    const query = unit(vector)
    const now = this.now()
    let best: { key: string; similarity: number } | undefined
    for (const entry of this.entries.values()) {
      if (entry.expiresAt <= now) {
        this.entries.delete(entry.key)
        continue
      }
      if (entry.bucket !== bucket || entry.vector.length !== query.length) continue
      const similarity = dot(query, entry.vector)
      if (similarity >= threshold && (best === undefined || similarity > best.similarity)) best = { key: entry.key, similarity }
    }
    return best
  }

  get size(): number {
    return this.entries.size
  }
}
