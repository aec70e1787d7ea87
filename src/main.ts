/** `npm start`: the command line first, so that --help and a wrong flag never load the gateway. */
import { setFlagsFromString } from "node:v8"
import { parseArguments, USAGE } from "./app/cli"
import { runtimeV8Flags } from "./app/worker-flags"

// Before the gateway's modules load: V8 decides how to allocate from what it sees early.
for (const flag of runtimeV8Flags(process.execArgv)) setFlagsFromString(flag)

const invocation = parseArguments(process.argv.slice(2))
switch (invocation._tag) {
  case "Help":
    process.stdout.write(USAGE)
    break
  case "Invalid":
    console.error(`quorum: ${invocation.message}`)
    process.exitCode = 2
    break
  case "Run": {
    const { main } = await import("./app/start")
    main(invocation.configPath)
  }
}
