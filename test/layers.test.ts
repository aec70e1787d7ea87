/**
 * The request flows down the folders of src/ and never comes back up: every import points
 * to the same folder or one lower in LAYERS. A folder cycle would need an import upward,
 * so none can form. README's Development section shows the same order.
 */
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, normalize, relative } from "node:path"
import { describe, expect, it } from "vitest"

const SRC = join(import.meta.dirname, "..", "src")

/** Lowest first. `(entry)` is src/main.ts, the command line's entry point. */
const LAYERS = [
  "domain",
  "protocol",
  "ingress",
  "policy",
  "config",
  "telemetry",
  "providers",
  "billing",
  "cache",
  "routing",
  "state",
  "consensus",
  "http",
  "app",
  "(entry)"
] as const

/**
 * The one import out of src/: the consensus registry names the built-in evaluators, whose
 * source is in the evaluators/ plug-in folder as the example users copy (see registry.ts).
 */
const ALLOWED_OUTSIDE = new Set(["consensus/registry.ts -> evaluators/answer-match", "consensus/registry.ts -> evaluators/consistency", "consensus/registry.ts -> evaluators/json-schema"])

const filesUnder = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return filesUnder(path)
    return entry.name.endsWith(".ts") ? [path] : []
  })

/** Relative specifiers of static imports, re-exports and dynamic imports. */
const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^;'"]*?\bfrom\s*["'](\.{1,2}\/[^"']+)["']|\bimport\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g

const layerOf = (fileFromSrc: string): string => (fileFromSrc.includes("/") ? fileFromSrc.split("/")[0]! : "(entry)")

interface Edge {
  readonly from: string
  readonly to: string
}

const edges = (): ReadonlyArray<Edge> =>
  filesUnder(SRC).flatMap((file) =>
    [...readFileSync(file, "utf8").matchAll(IMPORT)].map((match) => ({
      from: relative(SRC, file),
      to: relative(SRC, normalize(join(dirname(file), match[1] ?? match[2] ?? "")))
    })))

describe("layers", () => {
  const all = edges()
  const rank = new Map<string, number>(LAYERS.map((layer, i) => [layer, i]))

  it("reads the imports of every source file (the scan itself works)", () => {
    expect(all.length).toBeGreaterThan(300)
    expect(all).toContainEqual({ from: "routing/router.ts", to: "config/gateway-config" })
  })

  it("puts every folder of src/ in a layer", () => {
    const folders = new Set(filesUnder(SRC).map((file) => layerOf(relative(SRC, file))))
    expect([...folders].filter((folder) => !rank.has(folder))).toEqual([])
  })

  it("has no import pointing up a layer, nor out of src/ but the built-in evaluators", () => {
    const upward = all.filter(({ from, to }) => {
      if (to.startsWith("../")) return !ALLOWED_OUTSIDE.has(`${from} -> ${to.slice("../".length)}`)
      return rank.get(layerOf(to))! > rank.get(layerOf(from))!
    })
    expect(upward.map(({ from, to }) => `${from} -> ${to}`)).toEqual([])
  })
})
