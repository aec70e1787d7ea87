/** Embeddings for the semantic cache, from a configured embeddings model. */
import { Context, type Effect } from "effect"

export interface EmbedderShape {
  readonly embed: (model: string, text: string) => Effect.Effect<ReadonlyArray<number>, unknown>
}

export class Embedder extends Context.Tag("quorum/Embedder")<Embedder, EmbedderShape>() {}
