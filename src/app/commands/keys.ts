/** `quorum keys create | list | revoke`: virtual keys through the admin API. */
import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Option, Schema } from "effect"
import { BudgetPeriod, KeyView } from "../../billing/keys"
import { admin, adminKeyOption, urlOption } from "./admin-client"
import { table } from "./table"

const target = { url: urlOption, adminKey: adminKeyOption }

const CreatedKey = Schema.Struct({ ...KeyView.fields, key: Schema.String })
const KeyList = Schema.Struct({ object: Schema.Literal("list"), data: Schema.Array(KeyView) })

const limit = (value: number | null, unit = "") => (value === null ? "none" : `${value}${unit}`)

/** A comma-separated option as the list the admin API takes. */
const listOf = (text: string) => text.split(",").map((s) => s.trim()).filter((s) => s !== "")

const create = Command.make(
  "create",
  {
    ...target,
    name: Options.text("name").pipe(Options.withDescription("What the key is for (a team, a service)")),
    models: Options.text("models").pipe(Options.withDescription("Comma-separated models and routes the key may use (default: all)"), Options.optional),
    budgetUsd: Options.float("budget-usd").pipe(Options.withDescription("Most the key may spend per period, in USD"), Options.optional),
    period: Options.choice("budget-period", BudgetPeriod.literals).pipe(Options.withDescription("The budget's period (default month)"), Options.optional),
    rpm: Options.integer("rpm").pipe(Options.withDescription("Requests per minute"), Options.optional),
    tpm: Options.integer("tpm").pipe(Options.withDescription("Tokens per minute"), Options.optional),
    tags: Options.text("tags").pipe(Options.withDescription("Comma-separated tags routing rules match on (when: {key_tags: [...]})"), Options.optional),
    policies: Options.text("policies").pipe(Options.withDescription("Comma-separated content policies (names from the config's policies:) every request of the key is under"), Options.optional)
  },
  (o) =>
    Effect.gen(function*() {
      const body = {
        name: o.name,
        ...Option.match(o.models, { onNone: () => ({}), onSome: (m) => ({ models: listOf(m) }) }),
        ...Option.match(o.budgetUsd, { onNone: () => ({}), onSome: (budget_usd) => ({ budget_usd }) }),
        ...Option.match(o.period, { onNone: () => ({}), onSome: (budget_period) => ({ budget_period }) }),
        ...Option.match(o.rpm, { onNone: () => ({}), onSome: (rpm) => ({ rpm }) }),
        ...Option.match(o.tpm, { onNone: () => ({}), onSome: (tpm) => ({ tpm }) }),
        ...Option.match(o.tags, { onNone: () => ({}), onSome: (t) => ({ tags: listOf(t) }) }),
        ...Option.match(o.policies, { onNone: () => ({}), onSome: (p) => ({ policies: listOf(p) }) })
      }
      const key = yield* admin(o, "POST", "/admin/keys", CreatedKey, body)
      yield* Console.log(`Created ${key.id} (${key.name}). The key, shown only now:\n\n  ${key.key}\n`)
      yield* Console.log(`Budget: ${limit(key.budget_usd, " USD")} per ${key.budget_period}; rpm ${limit(key.rpm)}; tpm ${limit(key.tpm)}; models: ${key.models?.join(", ") ?? "all"}`)
      if (key.tags.length > 0 || key.policies.length > 0) {
        yield* Console.log(`Tags: ${key.tags.join(", ") || "none"}; policies: ${key.policies.join(", ") || "none"}`)
      }
    })
).pipe(Command.withDescription("Create a virtual key and print it (once)"))

const list = Command.make("list", target, (o) =>
  Effect.gen(function*() {
    const keys = yield* admin(o, "GET", "/admin/keys", KeyList)
    yield* Console.log(table(
      ["id", "name", "prefix", "state", "spent (period)", "budget", "rpm", "models", "tags", "policies"],
      keys.data.map((k) => [
        k.id,
        k.name,
        k.prefix,
        k.revoked_at === null ? "active" : "revoked",
        `$${k.spend.spent_usd} (${k.spend.period})`,
        k.budget_usd === null ? "none" : `$${k.budget_usd}/${k.budget_period}`,
        limit(k.rpm),
        k.models?.join(",") ?? "all",
        k.tags.join(",") || "-",
        k.policies.join(",") || "-"
      ])
    ))
  })).pipe(Command.withDescription("List virtual keys with their limits and what their period spent"))

const revoke = Command.make("revoke", { ...target, id: Args.text({ name: "id" }).pipe(Args.withDescription("The key's id (key_…), as `keys list` shows it")) }, (o) =>
  Effect.gen(function*() {
    const key = yield* admin(o, "DELETE", `/admin/keys/${encodeURIComponent(o.id)}`, KeyView)
    yield* Console.log(`Revoked ${key.id} (${key.name}): refused from now on, on every worker and replica.`)
  })).pipe(Command.withDescription("Revoke a virtual key at once"))

export const keysCommand = Command.make("keys").pipe(
  Command.withDescription("Create, list and revoke virtual keys (through the running gateway's admin API)"),
  Command.withSubcommands([create, list, revoke])
)
