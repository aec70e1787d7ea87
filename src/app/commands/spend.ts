/** `quorum spend`: the ledger's spend report, grouped as asked. */
import { Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { SpendReport } from "../../billing/reports"
import { admin, adminKeyOption, urlOption } from "./admin-client"
import { table } from "./table"

const query = (params: Record<string, Option.Option<string>>) => {
  const search = new URLSearchParams()
  for (const [name, value] of Object.entries(params)) if (Option.isSome(value)) search.set(name, value.value)
  const text = search.toString()
  return text === "" ? "" : `?${text}`
}

export const spendCommand = Command.make(
  "spend",
  {
    url: urlOption,
    adminKey: adminKeyOption,
    groupBy: Options.text("group-by").pipe(Options.withDescription("Comma-separated: key, model, provider, day (default key,model)"), Options.optional),
    from: Options.text("from").pipe(Options.withDescription("From this UTC date (YYYY-MM-DD), inclusive"), Options.optional),
    to: Options.text("to").pipe(Options.withDescription("Until this UTC date (YYYY-MM-DD), inclusive"), Options.optional),
    key: Options.text("key").pipe(Options.withDescription("Only this key's requests (its id)"), Options.optional)
  },
  (o) =>
    Effect.gen(function*() {
      const report = yield* admin(o, "GET", `/admin/spend${query({ group_by: o.groupBy, from: o.from, to: o.to, key: o.key })}`, SpendReport)
      const dims = report.group_by
      const label = (row: (typeof report.data)[number]) =>
        dims.map((d) => (d === "key" ? row.key_name ?? row.key ?? "(no key)" : row[d] ?? "–"))
      yield* Console.log(table(
        [...dims, "requests", "failed", "prompt tok", "completion tok", "cost USD"],
        [
          ...report.data.map((r) => [...label(r), r.requests, r.failed, r.prompt_tokens, r.completion_tokens, r.cost_usd]),
          [...dims.map((_, i) => (i === 0 ? "total" : "")), report.total.requests, report.total.failed, report.total.prompt_tokens, report.total.completion_tokens, report.total.cost_usd]
        ]
      ))
    })
).pipe(Command.withDescription("Spend from the ledger, grouped by key, model, provider or day"))
