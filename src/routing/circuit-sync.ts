/**
 * Where circuit verdicts are shared between replicas, when they are (Redis:
 * src/state/redis-circuits.ts). Without it each process's circuits are its own.
 */
import { Context, type Effect } from "effect"

export interface CircuitSyncShape {
  /** This process opened `id`'s circuit until `until` (epoch ms). */
  readonly opened: (id: string, until: number) => void
  /** This process's probe closed `id`'s circuit. */
  readonly closed: (id: string) => void
  /** Applies other replicas' verdicts as they come (until 0: closed), those already in force first. */
  readonly follow: (ids: ReadonlyArray<string>, apply: (id: string, until: number) => void) => Effect.Effect<void>
}

export class CircuitSync extends Context.Tag("quorum/CircuitSync")<CircuitSync, CircuitSyncShape>() {}
