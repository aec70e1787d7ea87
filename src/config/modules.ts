/**
 * Plug-in modules users drop into a folder (consensus evaluators, content checks): the
 * folder's module files, each imported and its export picked, with every failure naming
 * the file. What the export must look like is the caller's to check.
 *
 * User modules may be TypeScript, as the README shows. The gateway runs as compiled
 * JavaScript, so a .ts module is loaded through tsx (imported only when there is one).
 */
import { Effect, Schema } from "effect"
import { readdir } from "node:fs/promises"
import { join, resolve } from "node:path"
import { pathToFileURL } from "node:url"

export class ModuleLoadError extends Schema.TaggedError<ModuleLoadError>()("ModuleLoadError", {
  message: Schema.String
}) {}

const MODULE = /\.(ts|mts|js|mjs)$/
const NOT_A_MODULE = /\.(d|test|spec)\.[mc]?[jt]s$/
const TYPESCRIPT = /\.m?ts$/

/** The module files of a folder, in name order (`what` names the folder's purpose in errors). */
export const modulesIn = (dir: string, what: string): Effect.Effect<ReadonlyArray<string>, ModuleLoadError> =>
  Effect.tryPromise({
    try: () => readdir(dir),
    catch: (error) => new ModuleLoadError({ message: `${dir}: cannot read the ${what} folder (${String(error)})` })
  }).pipe(Effect.map((names) => names.filter((n) => MODULE.test(n) && !NOT_A_MODULE.test(n)).sort().map((n) => join(dir, n))))

/**
 * One tsx loader for the process, registered on the first TypeScript module: tsx's
 * scoped loader applies to the modules imported through it only, so it cannot change
 * how the gateway's own (compiled) modules load.
 */
let typescriptImport: Promise<(url: string) => Promise<Record<string, unknown>>> | undefined
const importTypeScript = (url: string): Promise<Record<string, unknown>> => {
  typescriptImport ??= import("tsx/esm/api").then(({ register }) => {
    const scoped = register({ namespace: "quorum-modules" })
    return (moduleUrl: string) => scoped.import(moduleUrl, import.meta.url) as Promise<Record<string, unknown>>
  })
  return typescriptImport.then((load) => load(url))
}

const importModule = (file: string): Promise<Record<string, unknown>> => {
  const url = pathToFileURL(resolve(file)).href
  return TYPESCRIPT.test(file) ? importTypeScript(url) : (import(url) as Promise<Record<string, unknown>>)
}

/**
 * `default`, else the export called `named`. A module that is CommonJS (a .ts file
 * outside an ES module package is compiled as one) arrives with its exports object as `default`.
 */
const exportOf = (module: Record<string, unknown>, named: string): unknown => {
  const exported = module.default ?? module[named]
  if (typeof exported !== "object" || exported === null || "name" in exported) return exported
  const commonJs = exported as Record<string, unknown>
  return commonJs.default ?? commonJs[named] ?? exported
}

/** The module's export (`default`, else `named`), or why it could not be imported. */
export const importExport = (file: string, named: string): Effect.Effect<unknown, ModuleLoadError> =>
  Effect.map(
    Effect.tryPromise({
      try: () => importModule(file),
      catch: (error) => new ModuleLoadError({ message: `${file}: cannot load the module (${error instanceof Error ? error.message : String(error)})` })
    }),
    (module) => exportOf(module, named)
  )
