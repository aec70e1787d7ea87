/**
 * vitest global setup: builds dist/ once for the run, so that gateways the tests spawn
 * run what `npm start` runs (the compiled entry), from the current source.
 */
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"

export default function setup(): void {
  execFileSync(process.execPath, [fileURLToPath(new URL("../../scripts/build.mjs", import.meta.url))], { stdio: "inherit" })
}
