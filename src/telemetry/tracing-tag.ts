/**
 * Spans on the request path, when traces are on (tracing.ts provides it, loaded only
 * then). Without it nothing is wrapped: a span the tracer would drop still costs its
 * allocations on every request and attempt.
 */
import { Context, type Effect } from "effect"
import type { Deployment } from "../config/gateway-config"
import type { ChatCompletionRequest } from "../protocol/chat-request"

export interface TracingShape {
  /** A client request's span (kind server), the root of its trace here. */
  readonly request: <A, E, R>(name: string, attributes: Record<string, string>, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** A consensus candidate's span: its attempts (retries, fallbacks) under it. */
  readonly candidate: <A, E, R>(model: string, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** One upstream attempt's span (kind client), with the GenAI attributes of its request and answer. */
  readonly attempt: <A, E, R>(deployment: Deployment, request: ChatCompletionRequest, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

export class Tracing extends Context.Tag("quorum/Tracing")<Tracing, TracingShape>() {}
