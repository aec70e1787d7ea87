/** `quorum ledger tail`: the newest requests in the ledger, and with --follow the ones that come after. */
import { Command, Options } from "@effect/cli"
import { Console, Effect, Schedule } from "effect"
import { RequestPage, type RequestView } from "../../billing/reports"
import { admin, adminKeyOption, type Target, urlOption } from "./admin-client"

const line = (r: RequestView): string =>
  [
    new Date(r.started_at).toISOString().replace("T", " ").slice(0, 19),
    String(r.status).padEnd(3),
    r.endpoint.padEnd(20),
    (r.model ?? "–").padEnd(24),
    (r.key_id ?? "(no key)").padEnd(16),
    `${r.prompt_tokens}+${r.completion_tokens} tok`.padStart(14),
    `$${r.cost_usd}`.padStart(12),
    `${r.latency_ms} ms`.padStart(9),
    r.error === null ? "" : ` ${r.error.slice(0, 120)}`
  ].join("  ")

/** Requests not printed yet, oldest first. Ids are remembered for a while, so an overlap never prints twice. */
const unseen = (page: RequestPage, seen: Set<string>) => {
  const fresh = page.data.filter((r) => !seen.has(r.id)).reverse()
  for (const r of fresh) seen.add(r.id)
  if (seen.size > 10_000) for (const id of [...seen].slice(0, 5_000)) seen.delete(id)
  return fresh
}

const follow = (target: Target, seen: Set<string>, since: number) =>
  Effect.gen(function*() {
    let from = since
    yield* Effect.repeat(
      Effect.gen(function*() {
        // Rows land in batches (spend.flush_ms): asking again from the last one seen catches late ones.
        const page = yield* admin(target, "GET", `/admin/requests?limit=500&from=${encodeURIComponent(new Date(from).toISOString())}`, RequestPage)
        for (const r of unseen(page, seen)) {
          yield* Console.log(line(r))
          from = Math.max(from, r.started_at - 5_000)
        }
      }),
      Schedule.spaced("1 second")
    )
  })

const tail = Command.make(
  "tail",
  {
    url: urlOption,
    adminKey: adminKeyOption,
    limit: Options.integer("limit").pipe(Options.withDescription("How many of the newest requests to show first (default 20)"), Options.withDefault(20)),
    follow: Options.boolean("follow").pipe(Options.withAlias("f"), Options.withDescription("Keep printing requests as they are recorded, until Ctrl-C"))
  },
  (o) =>
    Effect.gen(function*() {
      const page = yield* admin(o, "GET", `/admin/requests?limit=${Math.min(500, Math.max(1, o.limit))}`, RequestPage)
      const seen = new Set<string>()
      const first = unseen(page, seen)
      for (const r of first) yield* Console.log(line(r))
      if (!o.follow) return
      if (first.length === 0) yield* Console.error("(no requests yet; waiting for some, Ctrl-C to stop)")
      yield* follow(o, seen, first.at(-1)?.started_at ?? Date.now() - 5_000)
    })
).pipe(Command.withDescription("Show the newest requests in the ledger, with --follow as they come"))

export const ledgerCommand = Command.make("ledger").pipe(
  Command.withDescription("Read the request ledger"),
  Command.withSubcommands([tail])
)
