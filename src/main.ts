/** `npm start`: the command line first, so that --help and a wrong flag never load the gateway. */
import { parseArguments, USAGE } from "./app/cli"

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
