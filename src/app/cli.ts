/**
 * The command line: `--config path`, `--help`. Parsed before anything else loads, so
 * that `--help` and a mistyped flag answer at once and never start a server.
 */

export type Invocation =
  | { readonly _tag: "Run"; readonly configPath: string | undefined }
  | { readonly _tag: "Help" }
  | { readonly _tag: "Invalid"; readonly message: string }

export const USAGE = `Usage: npm start [-- options]       (or: node dist/main.js [options])

Quorum: an OpenAI-compatible LLM gateway with routing, fallbacks, consensus and spend.

Options:
  --config <path>         YAML config file (or QUORUM_CONFIG). Without one, the models of the
                          provider keys in the environment; without those, a demo fleet of
                          simulated models
  -h, --help              print this help and exit

Environment:
  HOST                    address to listen on (default 127.0.0.1; a non-loopback address
                          requires virtual keys unless auth.mode says otherwise)
  PORT                    port to listen on (default 8787)
  QUORUM_WORKERS          worker processes behind the port (default: the number of cores)
  QUORUM_CONFIG           config file, as --config
  QUORUM_EVALUATORS_DIR   folder of your evaluator modules (default: evaluators/ in the package)
  QUORUM_CHECKS_DIR       folder of your content check modules (besides the config's check_dirs)
  QUORUM_ADMIN_KEY        key of the admin API (/admin/...); without it the admin API is off
  QUORUM_DATABASE_URL     postgres:// URL of a shared ledger (default: SQLite in QUORUM_DATA_DIR)
  QUORUM_DATA_DIR         folder of the SQLite ledger (default ./data)
  OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY or GOOGLE_API_KEY, DEEPSEEK_API_KEY,
  DASHSCOPE_API_KEY, MISTRAL_API_KEY, GROQ_API_KEY, TOGETHER_API_KEY, OPENROUTER_API_KEY
                          provider keys

Examples:
  npm install && npm start     # serves on http://127.0.0.1:8787
  npm install && npm test      # the test suite (starts its own fake upstreams on loopback)
`

const invalid = (message: string): Invocation => ({ _tag: "Invalid", message: `${message} (see --help)` })

export const parseArguments = (argv: ReadonlyArray<string>): Invocation => {
  let configPath: string | undefined
  // One iterator, so that `--config` can take the argument after it.
  const args = argv[Symbol.iterator]()
  for (const arg of args) {
    if (arg === "--help" || arg === "-h") return { _tag: "Help" }
    if (arg === "--config") {
      const value: string | undefined = args.next().value
      if (value === undefined || value.startsWith("-")) return invalid("--config needs a path")
      configPath = value
    } else if (arg.startsWith("--config=")) {
      configPath = arg.slice("--config=".length)
      if (configPath === "") return invalid("--config needs a path")
    } else {
      return invalid(arg.startsWith("-") ? `unknown option ${arg}` : `unexpected argument ${arg}`)
    }
  }
  return { _tag: "Run", configPath }
}
