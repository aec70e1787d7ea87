#!/usr/bin/env node
// The `quorum` command (package.json "bin"): runs src/app/quorum-command.ts through tsx,
// which the gateway already depends on, so the command needs no build step of its own.
import { register } from "tsx/esm/api"

register()
const { main } = await import("../src/app/quorum-command.ts")
main(process.argv)
