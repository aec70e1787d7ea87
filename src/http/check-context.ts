/**
 * What content checks that ask a model (`llm`) use: the gateway's router, so retries,
 * fallbacks, circuits and health apply to a judge's call as to any other, and the call is
 * metered into the request's ticket (the router reads CurrentTicket) and shows in the
 * ledger as one of its attempts. policy/ sits below routing, so it defines the interface
 * (CheckContext) and this implements it; server.ts binds the config's policies to it.
 */
import { Effect, Layer } from "effect"
import { GatewayConfig } from "../config/gateway-config"
import { CheckFailed, type CheckContext } from "../policy/check"
import { withContext } from "../policy/policy"
import { type RouteError, Router } from "../routing/router"

/** Why the judge could not answer: the failure's kind, never an upstream's text (which may quote the prompt). */
const reasonOf = (model: string, error: RouteError): string => {
  switch (error._tag) {
    case "UpstreamError":
      return `${model} failed (${error.kind}${error.status === undefined ? "" : ` ${error.status}`})`
    case "OutsideLimits":
      return `${model} is outside the request's limits`
    case "AllCoolingDown":
      return `${model} is cooling down after failures`
    case "UnknownModel":
      return `${model} is not a model or route`
  }
}

export const routerCheckContext = (router: Router): CheckContext => ({
  ask: (model, messages) =>
    router.complete({ model, messages, temperature: 0 }, { requestLimits: false }).pipe(
      Effect.map((routed) => routed.value.choices[0]?.message.content ?? ""),
      Effect.mapError((error) => new CheckFailed({ reason: reasonOf(model, error) }))
    )
})

/** The config the routes read, its policies' waiting checks bound to the router (the rest of it unchanged). */
export const PoliciesBoundLive = Layer.effect(
  GatewayConfig,
  Effect.gen(function*() {
    const config = yield* GatewayConfig
    const router = yield* Router
    return { ...config, policies: withContext(config.policies, routerCheckContext(router)) }
  })
)
