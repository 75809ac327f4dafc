// Small SVG charts, drawn from integers (BigInt amounts are scaled to the chart's pixels with
// integer arithmetic before they become coordinates). Each chart is an image with a text
// description for screen readers.

const NS = 'http://www.w3.org/2000/svg';
const W = 320;
const H = 160;
const PAD = { left: 8, right: 8, top: 12, bottom: 24 };

function svg(label) {
  const el = document.createElementNS(NS, 'svg');
  el.setAttribute('viewBox', `0 0 ${W} ${H}`);
  el.setAttribute('role', 'img');
  el.setAttribute('aria-label', label);
  el.classList.add('chart');
  const title = document.createElementNS(NS, 'title');
  title.textContent = label;
  el.append(title);
  return el;
}

function add(parent, tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  parent.append(el);
  return el;
}

/** Position of `v` in [0, max] on `span` pixels, as an integer, without floats on amounts. */
function scale(v, max, span) {
  if (max === 0n) return 0;
  return Number((BigInt(v) * BigInt(span)) / max);
}

/** A line over time: `points` are `{label, value}` with BigInt values. */
export function lineChart(points, { label, format }) {
  const el = svg(label);
  const values = points.map((p) => BigInt(p.value));
  const max = values.reduce((m, v) => (v > m ? v : m), 0n);
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  add(el, 'line', { x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom, class: 'axis' });
  if (points.length === 0) {
    add(el, 'text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'muted' }, 'No history yet');
    return el;
  }
  const n = points.length;
  const xy = values.map((v, i) => [PAD.left + (n === 1 ? iw : Math.round((i * iw) / (n - 1))), H - PAD.bottom - scale(v, max, ih)]);
  const area = [`M${xy[0][0]},${H - PAD.bottom}`, ...xy.map(([x, y]) => `L${x},${y}`), `L${xy[n - 1][0]},${H - PAD.bottom}Z`].join(' ');
  add(el, 'path', { d: area, class: 'area' });
  add(el, 'polyline', { points: xy.map((p) => p.join(',')).join(' '), class: 'line' });
  add(el, 'text', { x: PAD.left, y: PAD.top - 2, class: 'tick' }, `max ${format(max)}`);
  add(el, 'text', { x: PAD.left, y: H - 6, class: 'tick' }, points[0].label);
  add(el, 'text', { x: W - PAD.right, y: H - 6, 'text-anchor': 'end', class: 'tick' }, points[n - 1].label);
  return el;
}

/** Vertical bars: `bars` are `{label, value (BigInt or number), kind}`. */
export function barChart(bars, { label }) {
  const el = svg(label);
  const values = bars.map((b) => BigInt(b.value));
  const max = values.reduce((m, v) => (v > m ? v : m), 0n);
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  const slot = Math.floor(iw / Math.max(bars.length, 1));
  const bw = Math.max(2, Math.floor(slot * 0.7));
  add(el, 'line', { x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom, class: 'axis' });
  bars.forEach((b, i) => {
    const h = scale(values[i], max, ih);
    const x = PAD.left + i * slot + Math.floor((slot - bw) / 2);
    add(el, 'rect', { x, y: H - PAD.bottom - h, width: bw, height: h, class: `bar ${b.kind || ''}` });
    add(el, 'text', { x: x + bw / 2, y: H - PAD.bottom - h - 3, 'text-anchor': 'middle', class: 'tick' }, String(b.value));
    if (bars.length <= 8) add(el, 'text', { x: x + bw / 2, y: H - 6, 'text-anchor': 'middle', class: 'tick' }, b.label);
  });
  return el;
}

/** How many of `values` (BigInt) fall in each of `buckets` equal ranges from 0 to the largest. */
export function histogram(values, buckets) {
  const max = values.reduce((m, v) => (v > m ? v : m), 0n);
  const width = max / BigInt(buckets) + 1n;
  const counts = new Array(buckets).fill(0);
  for (const v of values) counts[Math.min(buckets - 1, Number(v / width))] += 1;
  return counts.map((count, i) => ({ from: width * BigInt(i), to: width * BigInt(i + 1) - 1n, count }));
}
