/**
 * This package's root: the nearest folder above this module with a package.json. Found
 * by walking up because the code runs from src/ (tests, tsx) and from the bundle in
 * dist/, and files shipped beside the code (evaluators/, the dashboard's pages) are
 * found from it.
 */
import { existsSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const find = (): string => {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`)
    dir = parent
  }
  return dir
}

export const PACKAGE_ROOT = find()

/** This package's version, from its package.json (traces and the OpenAPI document name it). */
export const PACKAGE_VERSION: string = (JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string }).version
