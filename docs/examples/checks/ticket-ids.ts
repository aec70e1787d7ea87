/**
 * An example check module: the ids of an internal ticket system (`TCK-123456`), with the
 * prefix as an option. Put a file like this in a checks folder (`check_dirs` in the
 * config, or QUORUM_CHECKS_DIR) and name it in a policy:
 *
 *   policies:
 *     - name: no-ticket-ids
 *       on: both
 *       checks: [{ type: module, name: ticket-ids, options: { prefix: INC } }]
 *       action: redact
 *
 * `find` returns the spans it found, `{label, start, end}` ([start, end) in the text). A
 * plain function like this one runs as a stream's chunks arrive (holding back `maxSpan`
 * characters); an `async find` makes the policy wait for it, on whole texts only.
 */
import type { CheckModule } from "../../../src/policy/check"

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

const check: CheckModule = {
  name: "ticket-ids",
  // A prefix, a dash and up to 12 digits.
  maxSpan: 32,
  find: (text, options) => {
    const prefix = typeof options["prefix"] === "string" ? options["prefix"] : "TCK"
    const id = new RegExp(`(?<![A-Za-z0-9])${escape(prefix)}-\\d{4,12}(?![0-9])`, "g")
    const found = []
    for (let m = id.exec(text); m !== null; m = id.exec(text)) found.push({ label: "ticket_id", start: m.index, end: m.index + m[0].length })
    return found
  }
}

export default check
