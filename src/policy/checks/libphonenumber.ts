/**
 * libphonenumber, loaded on first use: its metadata is ~13 MB of a worker's memory, and
 * only a gateway with a phone check needs it. Synchronous, since checks are.
 */
import { createRequire } from "node:module"

type Library = typeof import("libphonenumber-js")

let library: Library | undefined
export const libphonenumber = (): Library => (library ??= createRequire(import.meta.url)("libphonenumber-js") as Library)
