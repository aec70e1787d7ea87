/**
 * Where the engine finds a task's learned policy. Optional: without it (a benchmark, a
 * gateway without a database) every task runs on the config policy.
 */
import { Context, type Effect } from "effect"
import type { ConsensusOutcome } from "../outcome"
import type { Policy } from "./policy"

export interface LearnedPolicySource {
  /** The task's learned policy, or undefined while it has fewer than `min_labels` labels. */
  readonly forTask: (task: string) => Effect.Effect<Policy | undefined>
}

export class LearnedPolicies extends Context.Tag("quorum/LearnedPolicies")<LearnedPolicies, LearnedPolicySource>() {}

/** A number in [0, 1) per draw: exploration's coin (Math.random unless a test injects a seeded one). */
export class ConsensusRandom extends Context.Tag("quorum/ConsensusRandom")<ConsensusRandom, () => number>() {}

/** Where finished consensus outcomes go for feedback and learning (optional; the request never waits on it). */
export class OutcomeSink extends Context.Tag("quorum/OutcomeSink")<OutcomeSink, {
  readonly record: (outcome: ConsensusOutcome, keyId: string | null) => void
}>() {}
