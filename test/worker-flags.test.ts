/** The flags the primary adds for its workers, and those each process sets on itself, keep to what the operator chose (src/app/worker-flags.ts). */
import { describe, expect, it } from "vitest"
import { runtimeV8Flags, workerExecArgv } from "../src/app/worker-flags"

describe("worker flags", () => {
  it("add a smaller young generation to the primary's own flags", () => {
    expect(workerExecArgv(["--enable-source-maps"], undefined)).toStrictEqual(["--enable-source-maps", "--max-semi-space-size=8"])
  })

  it("keep the operator's young generation, however it was given", () => {
    for (const own of [["--max-semi-space-size=32"], ["--max_semi_space_size=32"], ["--max-semi-space-size", "32"]]) {
      expect(workerExecArgv(own, undefined)).toStrictEqual(own)
    }
    expect(workerExecArgv([], "--max-old-space-size=512 --max-semi-space-size=64")).toStrictEqual([])
    expect(workerExecArgv([], "\"--max-semi-space-size=64\"")).toStrictEqual([])
    expect(workerExecArgv(["--min-semi-space-size=16"], undefined)).toStrictEqual(["--min-semi-space-size=16"])
    expect(workerExecArgv([], "--max-old-space-size=512")).toStrictEqual(["--max-semi-space-size=8"])
  })

  it("turn allocation-site pretenuring off in every serving process, unless the operator chose", () => {
    expect(runtimeV8Flags(["--enable-source-maps", "--max-semi-space-size=8"])).toStrictEqual(["--no-allocation-site-pretenuring"])
    for (const own of [["--allocation-site-pretenuring"], ["--allocation_site_pretenuring"], ["--no-allocation-site-pretenuring"]]) {
      expect(runtimeV8Flags(own)).toStrictEqual([])
    }
  })
})
