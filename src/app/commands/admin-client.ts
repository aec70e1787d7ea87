/**
 * The admin API as the `quorum` command calls it: the gateway's URL and admin key from
 * the options or the environment (QUORUM_URL, QUORUM_ADMIN_KEY), every answer decoded by
 * the same schemas the gateway answers with, every error shown as the gateway's message.
 * The command never opens the database itself: the gateway validates, counts and
 * propagates (a revoked key is refused at once on every worker and replica).
 */
import { Options } from "@effect/cli"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Config, Console, Data, Effect, Option, Redacted, Schema } from "effect"

export class CommandFailed extends Data.TaggedError("CommandFailed")<{ readonly message: string }> {}

export const urlOption = Options.text("url").pipe(
  Options.withDescription("The gateway's base URL (default: QUORUM_URL, else http://127.0.0.1:$PORT, PORT defaulting to 8787)"),
  Options.withFallbackConfig(Config.string("QUORUM_URL")),
  Options.optional
)

export const adminKeyOption = Options.redacted("admin-key").pipe(
  Options.withDescription("The admin key (default: QUORUM_ADMIN_KEY; prefer the variable: options show in the process list)"),
  Options.withFallbackConfig(Config.redacted("QUORUM_ADMIN_KEY")),
  Options.optional
)

export interface Target {
  readonly url: Option.Option<string>
  readonly adminKey: Option.Option<Redacted.Redacted<string>>
}

const ErrorBody = Schema.Struct({ error: Schema.Struct({ message: Schema.String }) })

const baseUrl = (url: Option.Option<string>): Effect.Effect<string, CommandFailed> =>
  Option.isSome(url)
    ? Effect.succeed(url.value)
    : Config.integer("PORT").pipe(
      Config.withDefault(8787),
      Effect.map((port) => `http://127.0.0.1:${port}`),
      Effect.mapError(() => new CommandFailed({ message: "PORT must be a number" }))
    )

/** Why a response failed, in the gateway's words when it gave some. */
const failure = (response: HttpClientResponse.HttpClientResponse) =>
  response.json.pipe(
    Effect.flatMap(Schema.decodeUnknown(ErrorBody)),
    Effect.map((body) => body.error.message),
    Effect.orElseSucceed(() => `HTTP ${response.status}`),
    Effect.flatMap((message) => new CommandFailed({ message: `the gateway answered ${response.status}: ${message}` }))
  )

/**
 * Says what the command waits on when a call takes long (a spend report over a large
 * ledger): on stderr, so that the answer on stdout stays clean for pipes, and only to a
 * person at a terminal (a script reading stderr gets the errors alone).
 */
const saying = (what: string) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  process.stderr.isTTY === true
    ? Effect.scoped(Effect.zipRight(Effect.forkScoped(Effect.delay(Console.error(what), "700 millis")), effect))
    : effect

/** Calls the admin API and decodes the answer. */
export const admin = <A, I>(target: Target, method: "GET" | "POST" | "DELETE", path: string, schema: Schema.Schema<A, I>, body?: unknown) =>
  Effect.gen(function*() {
    // An empty variable is no key (a shell's `QUORUM_ADMIN_KEY=` unsets it in effect).
    const key = yield* Option.match(Option.filter(target.adminKey, (k) => Redacted.value(k) !== ""), {
      onSome: Effect.succeed,
      onNone: () => new CommandFailed({ message: "no admin key: set QUORUM_ADMIN_KEY (the key the gateway was started with) or pass --admin-key" })
    })
    const base = yield* baseUrl(target.url)
    let request = HttpClientRequest.make(method)(`${base.replace(/\/$/, "")}${path}`).pipe(HttpClientRequest.bearerToken(Redacted.value(key)))
    if (body !== undefined) request = HttpClientRequest.bodyUnsafeJson(request, body)
    const client = yield* HttpClient.HttpClient
    const response = yield* client.execute(request).pipe(
      Effect.mapError(() => new CommandFailed({ message: `cannot reach the gateway at ${base}: is it running? (set QUORUM_URL or --url)` })),
      saying(`waiting for the gateway at ${base} (${method} ${path})…`)
    )
    if (response.status >= 400) return yield* failure(response)
    const json = yield* response.json.pipe(Effect.mapError(() => new CommandFailed({ message: "the gateway's answer is not JSON" })))
    return yield* Schema.decodeUnknown(schema)(json).pipe(
      Effect.mapError((e) => new CommandFailed({ message: `the gateway's answer is not what this command expects (is it the same version?): ${e.message.slice(0, 300)}` }))
    )
  }).pipe(Effect.scoped)
