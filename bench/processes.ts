/** Process trees of the bench's targets: starting them, and their CPU time and memory from /proc. */
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"

const children: Array<ChildProcess> = []

/** Every process the bench started is stopped when it exits, whatever way it exits. */
export const stopAll = () => {
  for (const child of children) {
    if (child.pid === undefined || child.exitCode !== null) continue
    try {
      process.kill(-child.pid, "SIGKILL")
    } catch {
      // Already gone.
    }
  }
}
process.on("exit", stopAll)
process.on("SIGINT", () => process.exit(130))

/** Starts `node args…` in its own process group and waits for its output to match `ready`. */
export const startNode = (args: ReadonlyArray<string>, env: Record<string, string>, ready: RegExp, cwd?: string) =>
  new Promise<{ child: ChildProcess; match: RegExpMatchArray; startedMs: number }>((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(process.execPath, [...args], { env: { ...process.env, ...env }, detached: true, ...(cwd === undefined ? {} : { cwd }) })
    children.push(child)
    let out = ""
    const onData = (d: Buffer) => {
      out += d.toString()
      const match = out.match(ready)
      if (match !== null) resolve({ child, match, startedMs: performance.now() - t0 })
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    child.on("exit", (code) => reject(new Error(`${args.join(" ")} exited with ${code}: ${out.slice(-2000)}`)))
  })

/** Waits until GET url answers 200; resolves with the ms since `since`. */
export const healthyAfter = async (url: string, since: number): Promise<number> => {
  for (;;) {
    try {
      const res = await fetch(url)
      if (res.status === 200) return performance.now() - since
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 10))
  }
}

const stat = (pid: number): Array<string> | undefined => {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  } catch {
    return undefined
  }
}

/** The process and every descendant. */
export const tree = (pid: number): Array<number> => {
  let kids: Array<number> = []
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return [pid]
  }
  return [pid, ...kids.flatMap(tree)]
}

/** CPU seconds (user + system) of a process tree. */
export const cpuSeconds = (pid: number): number =>
  tree(pid).reduce((sum, p) => {
    const fields = stat(p)
    return fields === undefined ? sum : sum + (Number(fields[11]) + Number(fields[12])) / 100
  }, 0)

export const rssMb = (pid: number): number => {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024
  } catch {
    return 0
  }
}

/** RSS of each process of a tree, largest first, and the total. */
export const treeRss = (pid: number): { readonly each: Array<number>; readonly total: number } => {
  const each = tree(pid).map(rssMb).sort((a, b) => b - a)
  return { each, total: each.reduce((a, b) => a + b, 0) }
}
