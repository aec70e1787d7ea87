/** Rows as aligned columns for a terminal; numbers right-aligned. */
export const table = (headings: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string | number>>): string => {
  const cells = rows.map((row) => row.map(String))
  const numeric = headings.map((_, i) => rows.length > 0 && rows.every((row) => typeof row[i] === "number" || /^\$?-?[\d.,]+$/.test(String(row[i]))))
  // A column per heading; a row without a cell there shows it blank.
  const cellOf = (row: ReadonlyArray<string>, i: number) => row[i] ?? ""
  const widths = headings.map((h, i) => Math.max(h.length, ...cells.map((row) => cellOf(row, i).length)))
  const line = (row: ReadonlyArray<string>) =>
    widths.map((w, i) => (numeric[i] ? cellOf(row, i).padStart(w) : cellOf(row, i).padEnd(w))).join("  ").trimEnd()
  return [line(headings), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n")
}
