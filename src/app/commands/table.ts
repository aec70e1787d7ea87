/** Rows as aligned columns for a terminal; numbers right-aligned. */
export const table = (headings: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string | number>>): string => {
  const cells = rows.map((row) => row.map(String))
  const numeric = headings.map((_, i) => rows.length > 0 && rows.every((row) => typeof row[i] === "number" || /^\$?-?[\d.,]+$/.test(String(row[i]))))
  const widths = headings.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]!.length)))
  const line = (row: ReadonlyArray<string>) => row.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd()
  return [line(headings), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n")
}
