/**
 * The plot: small multiples, one panel per data-structure scenario, cost per operation against
 * the slot count on log-log axes, one line per implementation (median, with a p25–p75 whisker
 * at each point). Plain SVG 1.1, no scripts, no external fonts.
 */
import { SCENARIOS, SCENARIO_IDS } from './scenarios.js';
import { TARGET_NAMES, type TargetName } from './targets.js';
import type { BenchRecord } from './report.js';

const COLORS: Readonly<Record<TargetName, string>> = { model: '#7570b3', legacy: '#d95f02', scalable: '#1b9e77' };
const COLS = 4;
const PANEL_W = 300;
const PANEL_H = 260;
const PLOT = { left: 62, right: 14, top: 34, bottom: 46 };
const HEADER = 56;
const FOOTER = 34;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function nsLabel(exp: number): string {
  const units: [number, string][] = [
    [9, 's'],
    [6, 'ms'],
    [3, 'µs'],
    [0, 'ns'],
  ];
  for (const [e, u] of units) {
    if (exp >= e) return `${10 ** (exp - e)} ${u}`;
  }
  return `${10 ** exp} ns`;
}

function nLabel(exp: number): string {
  const v = 10 ** exp;
  return v >= 1000 ? `${v / 1000}k` : String(v);
}

function marker(t: TargetName, x: number, y: number): string {
  const c = COLORS[t];
  if (t === 'model') return `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3.6" fill="${c}"/>`;
  if (t === 'legacy') return `<rect x="${(x - 3.4).toFixed(1)}" y="${(y - 3.4).toFixed(1)}" width="6.8" height="6.8" fill="${c}"/>`;
  return `<path d="M${x.toFixed(1)},${(y - 4.4).toFixed(1)} l4.2,7.4 h-8.4 z" fill="${c}"/>`;
}

export interface SvgMeta {
  readonly title: string;
  readonly subtitle: string;
}

/** The whole SVG document. */
export function plotSvg(records: readonly BenchRecord[], meta: SvgMeta): string {
  const panels = SCENARIO_IDS.length + 1; // + the legend cell
  const rows = Math.ceil(panels / COLS);
  const width = COLS * PANEL_W;
  const height = HEADER + rows * PANEL_H + FOOTER;
  const out: string[] = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
  );
  out.push(`<title>${esc(meta.title)}</title>`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(meta.title)}</text>`);
  out.push(`<text x="${width / 2}" y="42" text-anchor="middle" font-size="11" fill="#444">${esc(meta.subtitle)}</text>`);

  const xMin = Math.log10(7);
  const xMax = Math.log10(50000);
  SCENARIO_IDS.forEach((s, i) => {
    const ox = (i % COLS) * PANEL_W;
    const oy = HEADER + Math.floor(i / COLS) * PANEL_H;
    const pw = PANEL_W - PLOT.left - PLOT.right;
    const ph = PANEL_H - PLOT.top - PLOT.bottom;
    const rs = records.filter((r) => r.scenario === s && r.median > 0);
    const lo = Math.min(...rs.map((r) => Math.max(r.p25, r.median / 10, 1e-3)));
    const hi = Math.max(...rs.map((r) => Math.max(r.p75, r.median)));
    let yMin = rs.length === 0 ? 0 : Math.floor(Math.log10(lo));
    let yMax = rs.length === 0 ? 3 : Math.ceil(Math.log10(hi));
    if (yMax <= yMin) yMax = yMin + 1;
    if (yMax - yMin < 2) yMin = yMax - 2;
    const X = (n: number): number => ox + PLOT.left + ((Math.log10(n) - xMin) / (xMax - xMin)) * pw;
    const Y = (ns: number): number => oy + PLOT.top + (1 - (Math.log10(Math.max(ns, 10 ** yMin)) - yMin) / (yMax - yMin)) * ph;
    const info = SCENARIOS[s];
    out.push(`<g>`);
    out.push(`<text x="${ox + PLOT.left + pw / 2}" y="${oy + 14}" text-anchor="middle" font-size="13" font-weight="bold">${esc(info.title)}</text>`);
    out.push(`<text x="${ox + PLOT.left + pw / 2}" y="${oy + 27}" text-anchor="middle" font-size="9.5" fill="#555">${esc(info.op)}</text>`);
    out.push(`<rect x="${ox + PLOT.left}" y="${oy + PLOT.top}" width="${pw}" height="${ph}" fill="#fafafa" stroke="#999" stroke-width="0.8"/>`);
    const step = yMax - yMin > 6 ? 2 : 1;
    for (let e = yMin; e <= yMax; e++) {
      const y = Y(10 ** e);
      out.push(`<line x1="${ox + PLOT.left}" y1="${y.toFixed(1)}" x2="${ox + PLOT.left + pw}" y2="${y.toFixed(1)}" stroke="#e2e2e2" stroke-width="0.8"/>`);
      if ((e - yMin) % step === 0)
        out.push(`<text x="${ox + PLOT.left - 5}" y="${(y + 3.5).toFixed(1)}" text-anchor="end" fill="#333">${esc(nsLabel(e))}</text>`);
    }
    for (let e = 1; e <= 4; e++) {
      const x = X(10 ** e);
      out.push(`<line x1="${x.toFixed(1)}" y1="${oy + PLOT.top}" x2="${x.toFixed(1)}" y2="${oy + PLOT.top + ph}" stroke="#e2e2e2" stroke-width="0.8"/>`);
      out.push(`<text x="${x.toFixed(1)}" y="${oy + PLOT.top + ph + 14}" text-anchor="middle" fill="#333">${nLabel(e)}</text>`);
    }
    out.push(`<text x="${ox + PLOT.left + pw / 2}" y="${oy + PLOT.top + ph + 30}" text-anchor="middle" fill="#222">slots n (log scale)</text>`);
    const cy = oy + PLOT.top + ph / 2;
    out.push(`<text x="${ox + 13}" y="${cy}" text-anchor="middle" fill="#222" transform="rotate(-90 ${ox + 13} ${cy})">time per operation (log scale)</text>`);
    for (const t of TARGET_NAMES) {
      const pts = rs.filter((r) => r.implementation === t).sort((a, b) => a.n - b.n);
      if (pts.length === 0) continue;
      const c = COLORS[t];
      if (pts.length > 1) {
        const d = pts.map((r, k) => `${k === 0 ? 'M' : 'L'}${X(r.n).toFixed(1)},${Y(r.median).toFixed(1)}`).join(' ');
        out.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="1.8"${t === 'model' ? ' stroke-dasharray="5 3"' : ''}/>`);
      }
      for (const r of pts) {
        const x = X(r.n);
        out.push(`<line x1="${x.toFixed(1)}" y1="${Y(r.p25).toFixed(1)}" x2="${x.toFixed(1)}" y2="${Y(r.p75).toFixed(1)}" stroke="${c}" stroke-width="1.2"/>`);
        out.push(marker(t, x, Y(r.median)));
      }
    }
    out.push(`</g>`);
  });

  // Legend in the last cell.
  const li = SCENARIO_IDS.length;
  const lx = (li % COLS) * PANEL_W + 30;
  const ly = HEADER + Math.floor(li / COLS) * PANEL_H + 50;
  out.push(`<g>`);
  out.push(`<text x="${lx}" y="${ly - 14}" font-size="13" font-weight="bold">Implementation</text>`);
  const labels: Readonly<Record<TargetName, string>> = {
    model: 'model (reference; linear scans)',
    legacy: 'legacy (5.10 sorted array)',
    scalable: 'scalable (5.17+ trees)',
  };
  TARGET_NAMES.forEach((t, k) => {
    const y = ly + 8 + k * 22;
    out.push(
      `<line x1="${lx}" y1="${y}" x2="${lx + 34}" y2="${y}" stroke="${COLORS[t]}" stroke-width="1.8"${t === 'model' ? ' stroke-dasharray="5 3"' : ''}/>`,
    );
    out.push(marker(t, lx + 17, y));
    out.push(`<text x="${lx + 44}" y="${y + 4}">${esc(labels[t])}</text>`);
  });
  const notes = ['Points: median ns per operation;', 'whiskers: 25th to 75th percentile', 'of the samples. Missing points', 'were not measured (see JSON).'];
  notes.forEach((s, k) => out.push(`<text x="${lx}" y="${ly + 88 + k * 15}" fill="#444">${esc(s)}</text>`));
  out.push(`</g>`);
  out.push(
    `<text x="${width / 2}" y="${height - 12}" text-anchor="middle" font-size="10" fill="#555">Scenarios after tools/testing/selftests/kvm/memslot_perf_test.c, at the data-structure level (bench/README.md)</text>`,
  );
  out.push(`</svg>`);
  return `${out.join('\n')}\n`;
}
