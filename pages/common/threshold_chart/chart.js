// The threshold explorer's live figure: error histogram per class, recall curves below it, one slider under
// both. A slider step moves the threshold line, the markers and the counts here, in the browser; the value
// goes to the server once the slider rests (DEBOUNCE_MS), which then updates the metrics and other charts.
// Counts come precomputed per slider position (ecgviz/dashboard/livechart.py), so what is shown here is exact.

const DEBOUNCE_MS = 120;
const M = { left: 58, right: 18, top: 26, gap: 48, axis: 34 };
const HIST_H = 230;
const CURVE_H = 170;
const THUMB = 16; // px, kept in step with chart.css so the thumb sits on the threshold line

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const fmt = (v) => (Math.abs(v) >= 1e4 ? Math.round(v).toLocaleString("en-US") : String(+v.toPrecision(4)));
const pct = (x) => (x === null || !isFinite(x) ? "—" : `${(100 * x).toFixed(1)}%`);
const int = (n) => n.toLocaleString("en-US");

function niceTicks(lo, hi, count) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const r = raw / mag;
  const step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

function layout(root, data) {
  const width = Math.max(root.clientWidth, 320);
  const pw = width - M.left - M.right;
  const histTop = M.top;
  const curveTop = histTop + HIST_H + M.gap;
  const height = (data.curves ? curveTop + CURVE_H : histTop + HIST_H) + M.axis;
  const { lo, hi } = data.range;
  const sx = (v) => M.left + ((Math.min(Math.max(v, lo), hi) - lo) / (hi - lo)) * pw;
  return { width, pw, height, histTop, curveTop, sx };
}

function histogram(data, L) {
  const { edges, series } = data.hist;
  // a loop, not Math.max(...all counts): spreading tens of thousands of arguments overflows the call stack
  let maxCount = 1;
  for (const s of series) for (const c of s.counts) if (c > maxCount) maxCount = c;
  const logY = data.log_y;
  const top = logY ? Math.pow(10, Math.ceil(Math.log10(maxCount * 1.2))) : maxCount * 1.05;
  const floor = 0.8; // log axis: a bar of one beat stays visible
  const sy = logY
    ? (c) => L.histTop + HIST_H * (1 - Math.log10(Math.max(c, floor) / floor) / Math.log10(top / floor))
    : (c) => L.histTop + HIST_H * (1 - c / top);
  let out = "";
  const yTicks = logY
    ? [1, 10, 100, 1e3, 1e4, 1e5, 1e6].filter((v) => v <= top)
    : niceTicks(0, top, 4).filter((v) => Number.isInteger(v));
  for (const v of yTicks) {
    const y = sy(v);
    out += `<line class="ecgviz-tc-grid" x1="${M.left}" x2="${M.left + L.pw}" y1="${y}" y2="${y}"/>`;
    out += `<text class="ecgviz-tc-tick" x="${M.left - 6}" y="${y + 4}" text-anchor="end">${int(v)}</text>`;
  }
  out += `<g class="ecgviz-tc-bars">`;
  for (const s of series) {
    s.counts.forEach((c, i) => {
      if (c <= 0) return;
      const x0 = L.sx(edges[i]), x1 = L.sx(edges[i + 1]), y = sy(c);
      out += `<rect x="${x0}" y="${y}" width="${Math.max(x1 - x0, 1)}" height="${sy(logY ? floor : 0) - y}" ` +
        `fill="${s.color}"><title>${esc(s.name)}: ${int(c)} beat${c === 1 ? "" : "s"} with error ` +
        `${fmt(edges[i])}–${fmt(edges[i + 1])}</title></rect>`;
    });
  }
  out += `</g>`;
  out += `<text class="ecgviz-tc-axis-title" transform="translate(14 ${L.histTop + HIST_H / 2}) rotate(-90)" ` +
    `text-anchor="middle">beats${logY ? " (log)" : ""}</text>`;
  return out;
}

function curves(data, L) {
  if (!data.curves) return "";
  const sy = (r) => L.curveTop + CURVE_H * (1 - r);
  let out = "";
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    out += `<line class="ecgviz-tc-grid" x1="${M.left}" x2="${M.left + L.pw}" y1="${sy(v)}" y2="${sy(v)}"/>`;
    out += `<text class="ecgviz-tc-tick" x="${M.left - 6}" y="${sy(v) + 4}" text-anchor="end">${v * 100}%</text>`;
  }
  const { x, series } = data.curves;
  for (const s of series) {
    const pts = x.map((t, i) => `${L.sx(t).toFixed(1)},${sy(s.y[i]).toFixed(1)}`).join(" ");
    out += `<polyline class="ecgviz-tc-curve" points="${pts}" stroke="${s.color}"><title>${esc(s.name)}</title></polyline>`;
  }
  out += `<text class="ecgviz-tc-axis-title" transform="translate(14 ${L.curveTop + CURVE_H / 2}) rotate(-90)" ` +
    `text-anchor="middle">recognised</text>`;
  out += `<text class="ecgviz-tc-panel-title" x="${M.left}" y="${L.curveTop - 10}">` +
    `Share recognised: normal beats passed, abnormal classes caught</text>`;
  return out;
}

function xAxis(data, L) {
  const { lo, hi } = data.range;
  const y = L.height - M.axis;
  let out = "";
  for (const v of niceTicks(lo, hi, Math.max(3, Math.floor(L.pw / 90)))) {
    out += `<text class="ecgviz-tc-tick" x="${L.sx(v)}" y="${y + 16}" text-anchor="middle">${fmt(v)}</text>`;
  }
  out += `<text class="ecgviz-tc-axis-title" x="${M.left + L.pw / 2}" y="${y + 32}" text-anchor="middle">` +
    `reconstruction error (threshold)</text>`;
  return out;
}

// Each group's share recognised at the current value: normal beats passed (at or below), others caught (above).
function shares(state) {
  const data = state.data;
  const r = data.range;
  const i = Math.min(Math.max(Math.round((state.value - r.lo) / r.step), 0), r.n - 1);
  return data.groups.map((g, k) => {
    const above = state.exact ? data.at[k] : g.above[i];
    const hit = g.kind === "normal" ? g.total - above : above;
    return { ...g, above, hit, share: g.total ? hit / g.total : null };
  });
}

function readout(state) {
  const parts = [];
  const groups = shares(state);
  const normal = groups.find((g) => g.kind === "normal");
  const abnormal = groups.filter((g) => g.kind === "anomaly");
  if (normal) parts.push(`normal beats passed <b>${int(normal.hit)} / ${int(normal.total)}</b> (${pct(normal.share)})`);
  if (abnormal.length) {
    const hit = abnormal.reduce((a, g) => a + g.hit, 0), total = abnormal.reduce((a, g) => a + g.total, 0);
    parts.push(`anomalies caught <b>${int(hit)} / ${int(total)}</b> (${pct(total ? hit / total : null)})`);
  }
  const all = groups.find((g) => g.kind === "all");
  if (all) parts.push(`beats flagged <b>${int(all.above)} / ${int(all.total)}</b> (${pct(all.share)})`);
  return { html: `Threshold <b>${fmt(state.value)}</b> · ${parts.join(" · ")}`, groups };
}

function placeThreshold(root, state) {
  const L = state.layout;
  if (!L) return;
  const x = L.sx(state.value).toFixed(1);
  for (const line of root.querySelectorAll("line.ecgviz-tc-threshold")) {
    line.setAttribute("x1", x);
    line.setAttribute("x2", x);
  }
  const label = root.querySelector("text.ecgviz-tc-threshold-label");
  label.setAttribute("x", x);
  label.textContent = `threshold ${fmt(state.value)}`;
  const { html, groups } = readout(state);
  root.querySelector(".ecgviz-tc-readout").innerHTML = html;
  const markers = root.querySelector("g.ecgviz-tc-markers");
  if (state.data.curves) {
    const byName = new Map(groups.map((g) => [g.name, g]));
    markers.innerHTML = state.data.curves.series
      .filter((s) => byName.has(s.name) && byName.get(s.name).share !== null)
      .map((s) => {
        const g = byName.get(s.name);
        const cy = L.curveTop + CURVE_H * (1 - g.share);
        return `<circle cx="${x}" cy="${cy.toFixed(1)}" r="5" fill="${s.color}">` +
          `<title>${esc(s.name)}: ${int(g.hit)} / ${int(g.total)} (${pct(g.share)})</title></circle>`;
      })
      .join("");
  }
}

function draw(root, state) {
  const data = state.data;
  const L = (state.layout = layout(root, data));
  const svg = root.querySelector("svg.ecgviz-tc-svg");
  svg.setAttribute("width", L.width);
  svg.setAttribute("height", L.height);
  svg.setAttribute("viewBox", `0 0 ${L.width} ${L.height}`);
  const bottom = L.height - M.axis;
  svg.innerHTML =
    histogram(data, L) + curves(data, L) + xAxis(data, L) +
    // one line per panel: the gap between them holds the recall panel's title, which a line would cross
    `<line class="ecgviz-tc-threshold" y1="${M.top - 8}" y2="${data.curves ? L.histTop + HIST_H : bottom}"/>` +
    (data.curves ? `<line class="ecgviz-tc-threshold" y1="${L.curveTop}" y2="${bottom}"/>` : "") +
    `<text class="ecgviz-tc-threshold-label" y="${M.top - 12}" text-anchor="middle"></text>` +
    `<g class="ecgviz-tc-markers"></g>`;
  root.querySelector(".ecgviz-tc-title").textContent = data.title;
  root.querySelector(".ecgviz-tc-legend").innerHTML = data.hist.series
    .map((s) => `<span><i style="background:${s.color}"></i>${esc(s.name)}</span>`)
    .join("");
  const input = root.querySelector("input.ecgviz-tc-range");
  input.style.marginLeft = `${M.left - THUMB / 2}px`;
  input.style.width = `${L.pw + THUMB}px`;
  placeThreshold(root, state);
}

export default function ({ data: sent, parentElement, setStateValue }) {
  const data = sent[0]; // the payload comes inside a list (see __init__.py)
  const root = parentElement.querySelector(".ecgviz-tc");
  const state = root.__ecgviz || (root.__ecgviz = { revision: null, rangeKey: null, timer: null, observer: null, moves: 0 });
  state.data = data;
  const input = root.querySelector("input.ecgviz-tc-range");
  const r = data.range;
  const rangeKey = `${r.lo}|${r.hi}|${r.step}`;
  if (state.revision !== data.revision || state.rangeKey !== rangeKey) {
    // the server set the threshold (typed value, suggestion, new data): show it, with its exact counts
    state.revision = data.revision;
    state.rangeKey = rangeKey;
    input.min = String(r.lo);
    input.max = String(r.hi);
    input.step = String(r.step);
    input.value = String(data.threshold);
    state.value = data.threshold;
    state.exact = true;
  }
  input.oninput = () => {
    state.value = parseFloat(input.value);
    state.exact = false;
    placeThreshold(root, state);
    clearTimeout(state.timer);
    // numbered, so a value the server has since replaced (typed, suggested) still counts as a change when the
    // slider comes back to it
    state.timer = setTimeout(() => setStateValue("threshold", { value: state.value, move: ++state.moves }),
      DEBOUNCE_MS);
  };
  draw(root, state);
  if (!state.observer && typeof ResizeObserver !== "undefined") {
    let width = root.clientWidth;
    state.observer = new ResizeObserver(() => {
      if (root.clientWidth !== width) {
        width = root.clientWidth;
        draw(root, state);
      }
    });
    state.observer.observe(root);
  }
}
