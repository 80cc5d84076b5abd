// A small, dependency-free SVG line plot for the load reports: throughput and latency over time.
// A plotting library would earn its place for interactive charts; a report needs two static pictures
// that open in any browser and diff as text, which is ~100 lines.
//
//   ┌ title ───────────────────────────────┐
//   │ y ticks │  lines (one per series)     │
//   │         │                             │
//   │         └──── x ticks ────────────────│
//   │               x label      legend     │
//   └──────────────────────────────────────┘
//
// Points with a non-finite y (a second without replies has no p99) break the line instead of
// dropping to zero, so a gap is visible as a gap.

export interface Series {
  name: string;
  /** [x, y] pairs, x ascending. */
  points: Array<[number, number]>;
}

export interface PlotSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  width?: number;
  height?: number;
  /** Vertical markers, e.g. the step boundaries of a ramp or the moment a session stopped reading. */
  markers?: Array<{ x: number; label: string }>;
}

const palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const margin = { left: 70, right: 20, top: 36, bottom: 62 };

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/**
 * About `count` round tick values in [lo, hi] (1, 2 or 5 times a power of ten apart). With `cover`,
 * the last tick is at or above `hi`, so an axis that ends at its last tick holds every point.
 */
export function niceTicks(lo: number, hi: number, count = 5, cover = false): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw)!;
  const last = cover ? Math.ceil(hi / step - 1e-9) : Math.floor(hi / step + 1e-9);
  const out: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k <= last; k++) out.push(Number((k * step).toPrecision(12)));
  return out;
}

function label(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  if (a >= 100) return String(Math.round(v));
  return String(+v.toPrecision(3));
}

export function linePlot(spec: PlotSpec): string {
  const width = spec.width ?? 800;
  const height = spec.height ?? 360;
  const pw = width - margin.left - margin.right;
  const ph = height - margin.top - margin.bottom;
  const finite = spec.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = finite.map(([x]) => x);
  const ys = finite.map(([, y]) => y);
  const xMin = xs.length ? Math.min(...xs) : 0;
  let xMax = xs.length ? Math.max(...xs) : 1;
  if (xMax <= xMin) xMax = xMin + 1;
  // The y axis starts at 0: throughput and latency are read against zero, not against their minimum.
  const yTicks = niceTicks(0, ys.length ? Math.max(...ys) || 1 : 1, 5, true);
  const yMax = Math.max(yTicks[yTicks.length - 1], 1e-9);
  const px = (x: number) => margin.left + ((x - xMin) / (xMax - xMin)) * pw;
  const py = (y: number) => margin.top + ph - (y / yMax) * ph;
  const f = (v: number) => v.toFixed(1);

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(spec.title)}</text>`,
  ];
  for (const t of yTicks) {
    out.push(`<line x1="${margin.left}" x2="${margin.left + pw}" y1="${f(py(t))}" y2="${f(py(t))}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${margin.left - 6}" y="${f(py(t) + 4)}" text-anchor="end">${label(t)}</text>`);
  }
  for (const t of niceTicks(xMin, xMax, 8)) {
    out.push(`<line x1="${f(px(t))}" x2="${f(px(t))}" y1="${margin.top + ph}" y2="${margin.top + ph + 4}" stroke="#333"/>`);
    out.push(`<text x="${f(px(t))}" y="${margin.top + ph + 18}" text-anchor="middle">${label(t)}</text>`);
  }
  out.push(`<rect x="${margin.left}" y="${margin.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${margin.left + pw / 2}" y="${height - 28}" text-anchor="middle">${escapeXml(spec.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${margin.top + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(spec.yLabel)}</text>`);
  for (const m of spec.markers ?? []) {
    if (!Number.isFinite(m.x) || m.x < xMin || m.x > xMax) continue;
    out.push(`<line x1="${f(px(m.x))}" x2="${f(px(m.x))}" y1="${margin.top}" y2="${margin.top + ph}" stroke="#999" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${f(px(m.x) + 3)}" y="${margin.top + 12}" font-size="10" fill="#555">${escapeXml(m.label)}</text>`);
  }
  spec.series.forEach((s, i) => {
    const color = palette[i % palette.length];
    // One path, with a new "M" after every gap.
    let d = '';
    let pen = false;
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${f(px(x))} ${f(py(y))} `;
      pen = true;
    }
    if (d !== '') out.push(`<path d="${d.trim()}" fill="none" stroke="${color}" stroke-width="1.6"/>`);
    const lx = margin.left + i * Math.min(160, pw / Math.max(1, spec.series.length));
    out.push(`<rect x="${f(lx)}" y="${height - 14}" width="14" height="3" fill="${color}"/>`);
    out.push(`<text x="${f(lx + 18)}" y="${height - 9}">${escapeXml(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
