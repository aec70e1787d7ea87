/**
 * Cools down a deployment that keeps failing, then probes it back: after
 * `failureThreshold` failures in a row it is skipped for `cooldownMs`; then one request
 * at a time is let through as a probe, and its outcome closes or reopens the circuit.
 * Failures are counted per process; with a CircuitSync (Redis) the verdicts, opened and
 * closed, are shared by every worker and replica.
 */
import { Effect, Option } from "effect"
import { GatewayConfig } from "../config/gateway-config"
import { CircuitSync } from "./circuit-sync"

interface State {
  failures: number
  /** 0 when closed; else when the cooldown ends. */
  openUntil: number
  /** A probe is in flight: nobody else may pass until it reports. */
  probing: boolean
}

export type Admission = "closed" | "probe" | "open"

export class CircuitBreakers extends Effect.Service<CircuitBreakers>()("quorum/CircuitBreakers", {
  effect: Effect.gen(function*() {
    const { circuit, deployments } = yield* GatewayConfig
    const sync = Option.getOrUndefined(yield* Effect.serviceOption(CircuitSync))
    const states = new Map<string, State>()
    const stateOf = (id: string): State => {
      let state = states.get(id)
      if (state === undefined) {
        state = { failures: 0, openUntil: 0, probing: false }
        states.set(id, state)
      }
      return state
    }

    // Another replica's verdict: taken as it is, and never sent on again.
    yield* sync?.follow([...deployments.keys()], (id, until) => {
      const state = stateOf(id)
      if (until === 0) {
        state.failures = 0
        state.openUntil = 0
      } else state.openUntil = Math.max(state.openUntil, until)
      state.probing = false
    }) ?? Effect.void

    return {
      /** Whether a call to `id` may start now; "probe" must be followed by a report. */
      admit: (id: string, now: number): Admission => {
        const state = stateOf(id)
        if (state.openUntil === 0) return "closed"
        if (now < state.openUntil || state.probing) return "open"
        state.probing = true
        return "probe"
      },
      /** What the dashboard shows: closed, open (cooling down), or probing (a probe may pass or is in flight). */
      state: (id: string, now: number): "closed" | "open" | "probing" => {
        const state = states.get(id)
        if (state === undefined || state.openUntil === 0) return "closed"
        return state.probing || now >= state.openUntil ? "probing" : "open"
      },
      /** When an open circuit lets a probe through again. */
      reopensAt: (id: string): number => stateOf(id).openUntil,
      succeeded: (id: string): void => {
        const state = stateOf(id)
        if (state.openUntil !== 0) sync?.closed(id)
        state.failures = 0
        state.openUntil = 0
        state.probing = false
      },
      failed: (id: string, now: number): void => {
        const state = stateOf(id)
        state.failures++
        if (state.probing || state.failures >= circuit.failureThreshold) {
          state.openUntil = now + circuit.cooldownMs
          sync?.opened(id, state.openUntil)
        }
        state.probing = false
      },
      /** A probe that ended with neither verdict (cancelled, or the caller's own fault). */
      abandoned: (id: string): void => {
        stateOf(id).probing = false
      }
    }
  })
}) {}
