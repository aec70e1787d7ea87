/** The sim adapter: simulated models answered in-process, for the demo fleet and the benchmarks. */
import type { Adapter } from "../adapter"
import { makeSimClient } from "./client"

export const simAdapter: Adapter = {
  name: "sim",
  make: makeSimClient,
  providers: {
    sim: { baseUrl: undefined, keyEnv: [], models: [] }
  }
}
