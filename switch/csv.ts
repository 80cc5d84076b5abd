// CSV (RFC 4180) with formula-injection protection, shared by statements (statement-routes.ts) and
// settlement reports (rendered in the settlement task pool, settlement-tasks.ts): no route or uWS
// import here, so a worker thread can load it.

/** One field: text that a spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a
 * leading single quote; fields with a quote, comma or line break are quoted, quotes doubled.
 * Numbers are ours and go out as they are (a negative amount stays a number). */
export function csvField(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return String(v);
  let s = v;
  if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;
  return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

export function csvText(header: string[], rows: Array<Array<string | number | null | undefined>>): string {
  return [header, ...rows].map((r) => r.map(csvField).join(',')).join('\r\n') + '\r\n';
}
