// Small inline-SVG charts, drawn here so the console needs nothing from elsewhere.
// Each chart carries a <title> and a text table for screen readers.
import { tr } from "/static/console/i18n.js";

const NS = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(width, height, title) {
  const root = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart-svg",
    preserveAspectRatio: "xMinYMin meet" });
  root.append(el("title", {}, title));
  return root;
}

function table(rows, head) {
  const wrap = document.createElement("table");
  wrap.className = "visually-hidden";
  const tr = document.createElement("tr");
  for (const cell of head) tr.append(Object.assign(document.createElement("th"), { textContent: cell }));
  wrap.append(tr);
  for (const row of rows) {
    const line = document.createElement("tr");
    for (const cell of row) line.append(Object.assign(document.createElement("td"), { textContent: String(cell) }));
    wrap.append(line);
  }
  return wrap;
}

function wrapWith(chart, rows, head) {
  const box = document.createElement("div");
  box.append(chart, table(rows, head));
  return box;
}

// Small-cell suppression (issue 13, outcome 13): the screen shows what the CSV
// shows. `shown(n)` is the text of a count ("<5" for 1..4 by default); a hidden
// count is drawn as a pale bar at the threshold, so its length gives nothing away.
const plain = { shown: (n) => String(n ?? 0), hidden: () => false, floor: 0 };

// Horizontal bars: [[label, value], ...].
export function barChart(pairs, { title = "", color = "#1d6f8c", small = plain } = {}) {
  const rowH = 28;
  const labelW = 190;
  const width = 480;
  const height = Math.max(1, pairs.length) * rowH + 10;
  const length = (v) => (small.hidden(v) ? small.floor : v || 0);
  const max = Math.max(1, ...pairs.map(([, v]) => length(v)));
  const root = svg(width, height, title);
  pairs.forEach(([label, value], index) => {
    const y = 5 + index * rowH;
    const w = (length(value) / max) * (width - labelW - 60);
    root.append(el("text", { x: labelW - 8, y: y + 17, "text-anchor": "end", class: "chart-label" },
      label.length > 26 ? `${label.slice(0, 25)}…` : label));
    root.append(el("rect", { x: labelW, y: y + 3, width: Math.max(value ? 2 : 0, w), height: rowH - 8, rx: 3,
      fill: small.hidden(value) ? "#b9c7d0" : color }));
    root.append(el("text", { x: labelW + w + 6, y: y + 17, class: "chart-value" }, small.shown(value || 0)));
  });
  return wrapWith(root, pairs.map(([label, value]) => [label, small.shown(value || 0)]), [tr("gjelder"), tr("antall")]);
}

const DAYS = [["mon", "man"], ["tue", "tir"], ["wed", "ons"], ["thu", "tor"], ["fri", "fre"], ["sat", "lør"], ["sun", "søn"]];

// Hour by weekday: {mon: [24 counts], ...}.
export function heatmap(grid, { title = "", small = plain } = {}) {
  const cell = 26;
  const left = 44;
  const top = 22;
  const width = left + 24 * cell + 10;
  const height = top + 7 * cell + 34;
  const max = Math.max(1, ...DAYS.flatMap(([key]) => (grid[key] || []).map((n) => (small.hidden(n) ? small.floor : n))));
  const root = svg(width, height, title);
  for (let hour = 0; hour < 24; hour += 1) {
    if (hour % 3 === 0) root.append(el("text", { x: left + hour * cell + cell / 2, y: 15, "text-anchor": "middle", class: "chart-label" }, String(hour).padStart(2, "0")));
  }
  const rows = [];
  DAYS.forEach(([key, label], day) => {
    const counts = grid[key] || Array(24).fill(0);
    const dayName = tr(label);
    rows.push([dayName, ...counts.map((n) => small.shown(n))]);
    root.append(el("text", { x: left - 8, y: top + day * cell + 17, "text-anchor": "end", class: "chart-label" }, dayName));
    counts.forEach((count, hour) => {
      const share = (small.hidden(count) ? small.floor : count) / max;
      // Light to dark blue; an empty hour stays pale grey.
      const fill = count ? `hsl(205 70% ${Math.round(88 - share * 60)}%)` : "#eef1f4";
      const rect = el("rect", { x: left + hour * cell + 1, y: top + day * cell + 1, width: cell - 2, height: cell - 2, rx: 3, fill });
      rect.append(el("title", {}, tr("{day} kl. {h}: {n}", { day: dayName, h: String(hour).padStart(2, "0"), n: small.shown(count) })));
      root.append(rect);
      if (count) root.append(el("text", { x: left + hour * cell + cell / 2, y: top + day * cell + 17, "text-anchor": "middle",
        class: share > 0.55 ? "chart-cell light" : "chart-cell" }, small.shown(count)));
    });
  });
  root.append(el("text", { x: left, y: height - 8, class: "chart-label" }, tr("Mørkere = flere samtaler (høyest: {n})", { n: small.shown(max) })));
  return wrapWith(root, rows, [tr("dag"), ...Array.from({ length: 24 }, (_, i) => tr("kl {h}", { h: i }))]);
}

// Wait-time percentiles for answered and abandoned chats, side by side.
export function percentileChart(answered, abandoned, { title = "", small = plain } = {}) {
  const keys = [["p50", "median"], ["p90", "90 %"], ["p99", "99 %"], ["max", "lengst"]];
  const width = 480;
  const height = 230;
  const base = 190;
  const values = keys.flatMap(([k]) => [answered[k] || 0, abandoned[k] || 0]);
  const max = Math.max(1, ...values);
  const root = svg(width, height, title);
  const fmt = (s) => (s === null || s === undefined ? "–" : s < 90 ? `${Math.round(s)} s` : `${Math.round(s / 60)} min`);
  const slot = (width - 60) / keys.length;
  keys.forEach(([key, label], index) => {
    const x = 50 + index * slot;
    [[answered[key], "#1d6f8c"], [abandoned[key], "#b3261e"]].forEach(([value, fill], j) => {
      const hgt = ((value || 0) / max) * (base - 30);
      const bx = x + 10 + j * (slot / 2 - 8);
      root.append(el("rect", { x: bx, y: base - hgt, width: slot / 2 - 20, height: hgt, rx: 3, fill }));
      root.append(el("text", { x: bx + (slot / 2 - 20) / 2, y: base - hgt - 4, "text-anchor": "middle", class: "chart-value" }, fmt(value)));
    });
    root.append(el("text", { x: x + slot / 2, y: base + 18, "text-anchor": "middle", class: "chart-label" }, tr(label)));
  });
  root.append(el("line", { x1: 40, y1: base, x2: width - 10, y2: base, stroke: "#888" }));
  root.append(el("rect", { x: 50, y: height - 14, width: 10, height: 10, fill: "#1d6f8c" }));
  root.append(el("text", { x: 64, y: height - 5, class: "chart-label" }, tr("besvart (n={n})", { n: small.shown(answered.n ?? 0) })));
  root.append(el("rect", { x: 230, y: height - 14, width: 10, height: 10, fill: "#b3261e" }));
  root.append(el("text", { x: 244, y: height - 5, class: "chart-label" }, tr("forlatt i kø (n={n})", { n: small.shown(abandoned.n ?? 0) })));
  return wrapWith(root, keys.map(([k, label]) => [tr(label), fmt(answered[k]), fmt(abandoned[k])]), [tr("ventetid"), tr("besvart"), tr("forlatt")]);
}
