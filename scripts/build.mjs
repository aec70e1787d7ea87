/**
 * Builds dist/, what `npm start` runs: src/main.ts bundled by esbuild (the compiler tsx
 * already brings; its binary comes in the registry package @esbuild/<platform>, with no
 * install script to run). Bundling, rather than tsc's per-file emit, because the source
 * imports relative modules without extensions (moduleResolution Bundler), which Node's
 * ESM loader refuses. Packages are bundled too (but for EXTERNAL, below): loading Effect's
 * thousand ESM files one by one was most of a worker's start-up.
 *
 * Code splitting lets the cluster primary skip the HTTP server: src/app/start.ts imports it
 * dynamically, so it lands in a chunk only workers load.
 *
 * Files are written to a temporary name and renamed into place, chunks before the entry,
 * so that a gateway starting while `npm start` or the tests rebuild never reads half a
 * file. Run by `npm start` (prestart), `npm run build` and the tests' global setup; not on
 * install (prepare), so that a source that does not compile never fails `npm install`,
 * and `npm start` always serves the source as it is.
 */
import { build } from "esbuild"
import { mkdir, readdir, rename, rm, writeFile } from "node:fs/promises"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const outdir = join(root, "dist")

/**
 * Left to node_modules: native addons (libsql), what src/ requires on first use through
 * createRequire (gpt-tokenizer, libphonenumber-js: loaded only when needed), optional
 * drivers that pg looks for and does not need (pg-native), tsx (user evaluators in
 * TypeScript), and the CLI's and tests' own packages.
 */
const EXTERNAL = ["libsql", "gpt-tokenizer", "libphonenumber-js", "pg-native", "tsx", "tsx/*", "esbuild"]

const result = await build({
  absWorkingDir: root,
  entryPoints: ["src/main.ts"],
  outdir,
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // Packages are bundled too (see the comment above), but for native addons, modules loaded
  // on first use through createRequire, and what only another environment loads.
  external: EXTERNAL,
  // Bundled CommonJS packages call require() for Node's modules; ESM has none of its own.
  banner: { js: "import { createRequire as __quorumCreateRequire } from \"node:module\"; const require = __quorumCreateRequire(import.meta.url);" },
  write: false,
  logLevel: "warning"
}).catch(() => {
  // esbuild has printed the errors, with their files and lines.
  console.error("quorum: the build failed; dist/ is unchanged")
  process.exit(1)
})

const entry = join(outdir, "main.js")
const outputs = [...result.outputFiles].sort((a, b) => Number(a.path === entry) - Number(b.path === entry))
for (const file of outputs) {
  await mkdir(dirname(file.path), { recursive: true })
  const temporary = `${file.path}.${process.pid}.tmp`
  await writeFile(temporary, file.contents)
  await rename(temporary, file.path)
}

// Chunks of earlier builds: their names change with their content.
const written = new Set(outputs.map((f) => f.path))
for (const dir of [outdir, join(outdir, "chunks")]) {
  for (const name of await readdir(dir)) {
    const path = join(dir, name)
    if (name.endsWith(".js") && !written.has(path)) await rm(path, { force: true })
  }
}
