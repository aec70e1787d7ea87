/**
 * Output policies on a stream, as chunks arrive. A finding can span chunks (a card number
 * streamed a few digits at a time), so the scanner holds back the last `maxSpan`
 * characters (the longest finding its policies' checks can make) and releases only text
 * that no later chunk can turn into a finding. A blocking policy that fires cuts the
 * stream before the finding reaches the client; a redacting one releases the text with
 * markers in place. Held-back text is released at the end of the stream.
 *
 * A check that waits (an `llm` check, an async module) cannot run per chunk: with one
 * among the policies, the scanner holds the whole text and the checks run on it when the
 * stream ends, so nothing leaves before every check has read it (the answer reaches the
 * client in one piece, redacted, or not at all).
 */
import { Effect } from "effect"
import type { Finding } from "./check"
import { describeFindings, inspect, inspectAll, type Policy, redact, waits } from "./policy"

export interface Violation {
  readonly policy: string
  /** What was found (labels), never the text. */
  readonly found: string
}

export interface Released {
  /** Text that may go to the client now (possibly with redaction markers). */
  readonly text: string
  /** Set when a blocking policy fired: the stream must end with an error, sending nothing more. */
  readonly violation?: Violation
}

export class StreamScanner {
  private held = ""
  private readonly holdBack: number
  /** Some check waits: the whole text is held until the stream ends (`endWaiting`). */
  readonly waits: boolean

  /** `policies`: the output policies in force (block or redact). */
  constructor(private readonly policies: ReadonlyArray<Policy>) {
    this.holdBack = Math.max(0, ...policies.map((p) => p.maxSpan))
    this.waits = waits(policies)
  }

  push(chunk: string): Released {
    this.held += chunk
    return this.waits ? { text: "" } : this.release(false, this.policies.map((p) => inspect(p, this.held)))
  }

  /** The stream ended: everything held is released (or blocked). For policies without checks that wait. */
  end(): Released {
    return this.release(true, this.policies.map((p) => inspect(p, this.held)))
  }

  /** The stream ended: every check, the waiting ones too, reads the whole text, then it is released (or blocked). */
  endWaiting(): Effect.Effect<Released> {
    return Effect.map(
      Effect.forEach(this.policies, (p) => inspectAll(p, this.held), { concurrency: "unbounded" }),
      (findings) => this.release(true, findings)
    )
  }

  /** `found`: each policy's findings in the held text, in the policies' order. */
  private release(final: boolean, found: ReadonlyArray<ReadonlyArray<Finding>>): Released {
    const text = this.held
    let cut = final ? text.length : Math.max(0, text.length - this.holdBack)
    const redactions = []
    for (const [i, policy] of this.policies.entries()) {
      const findings = found[i] ?? []
      if (findings.length === 0) continue
      if (policy.action === "block") {
        this.held = ""
        return { text: "", violation: { policy: policy.name, found: describeFindings(findings) } }
      }
      redactions.push(...findings)
    }
    // Never release part of a finding: the cut moves back to where one that crosses it starts.
    for (const f of redactions) if (f.start < cut && f.end > cut) cut = f.start
    const out = redact(text.slice(0, cut), redactions.filter((f) => f.end <= cut))
    this.held = text.slice(cut)
    return { text: out }
  }
}
