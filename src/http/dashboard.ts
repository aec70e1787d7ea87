/**
 * GET /dashboard: the operator's pages, plain files with no build step (src/http/dashboard/),
 * read once at start-up and served with a strict content security policy: the page runs
 * only its own script, and talks only to this gateway's admin API, with the admin key the
 * operator types in (never in a cookie, so no other site can make the browser send it).
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { PACKAGE_ROOT } from "../domain/package-root"

const DIR = join(PACKAGE_ROOT, "src", "http", "dashboard")

const CONTENT_TYPES = {
  "index.html": "text/html; charset=utf-8",
  "dashboard.js": "text/javascript; charset=utf-8",
  "dashboard.css": "text/css; charset=utf-8"
} as const

type Asset = keyof typeof CONTENT_TYPES

const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache"
}

interface Loaded {
  readonly body: Uint8Array
  readonly etag: string
}

const load = (): ReadonlyMap<Asset, Loaded> =>
  new Map(
    (Object.keys(CONTENT_TYPES) as Array<Asset>).map((name) => {
      const body = readFileSync(join(DIR, name))
      return [name, { body, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 16)}"` }]
    })
  )

/** The handler for /dashboard and /dashboard/assets/<file>: anything else under it is the page (its own router reads the hash). */
export const makeDashboard = () => {
  const assets = load()
  return Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const path = new URL(request.url, "http://quorum").pathname
    const name = (path.startsWith("/dashboard/assets/") ? path.slice("/dashboard/assets/".length) : "index.html") as Asset
    const asset = assets.get(name)
    if (asset === undefined) return HttpServerResponse.text("Not found", { status: 404, headers: SECURITY_HEADERS })
    if (request.headers["if-none-match"] === asset.etag) return HttpServerResponse.empty({ status: 304, headers: { ...SECURITY_HEADERS, etag: asset.etag } })
    return HttpServerResponse.uint8Array(asset.body, { contentType: CONTENT_TYPES[name], headers: { ...SECURITY_HEADERS, etag: asset.etag } })
  })
}
