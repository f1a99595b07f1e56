// The statistics screen, its CSV, and switching views.
import { download, h } from "/static/common/net.js";
import { barChart, heatmap, percentileChart } from "/static/console/charts.js";
import { GENDER, categoryName, t, tr } from "/static/console/i18n.js";
import { $, state, call, problem } from "/static/console/api.js";
import { labelOf } from "/static/console/coding.js";

// -- statistics ---------------------------------------------------------------------
export function dayString(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}
export function statsRange() {
  const from = $("stats-from").value;
  const to = new Date(`${$("stats-to").value}T00:00:00`);
  to.setDate(to.getDate() + 1);
  return `from=${from}&to=${dayString(to)}`;
}
export async function loadStats(event) {
  event?.preventDefault();
  $("stats-error").hidden = true;
  const result = await call("GET", `/api/v1/stats?${statsRange()}`);
  if (!result.ok) {
    $("stats-error").textContent = problem(result);
    $("stats-error").hidden = false;
    return;
  }
  const s = result.data;
  // The same small-cell rule as the CSV (CHATVAKT_STATS_SUPPRESS_BELOW): counts
  // from 1 to N-1 read "<N", here as there, and the screen says why.
  const below = Number(s.suppress_below) || 0;
  const small = { hidden: (n) => Number.isInteger(n) && n > 0 && n < below, floor: below,
    shown: (n) => (Number.isInteger(n) && n > 0 && n < below ? `<${below}` : String(n ?? "–")) };
  const note = $("stats-suppress");
  note.hidden = below < 2;
  note.textContent = below < 2 ? "" : t("stats-suppress").replaceAll("{n}", String(below));
  const pct = (v) => (v === null || v === undefined ? "–" : `${Math.round(v * 100)} %`);
  const mins = (v) => (v === null || v === undefined ? "–" : v < 90 ? `${Math.round(v)} s` : `${Math.round(v / 60)} min`);
  $("stats-keys").replaceChildren(...[
    ["total_chats", small.shown(s.total_chats)], ["answered", small.shown(s.answered)], ["abandoned_share", pct(s.abandoned_share)],
    ["coded_share", pct(s.coded_share)], ["answered_within_5min_share", pct(s.answered_within_5min_share)],
    ["at_risk_answered_within_5min_share", pct(s.at_risk_answered_within_5min_share)], ["wait_p50", mins(s.wait_s?.p50)],
    ["duration_p50", mins(s.duration_s?.p50)],
  // data-key names the CSV's row, so a test can hold the two side by side.
  ].map(([key, value]) => h("div", { class: "key card", "data-key": key }, h("span", { class: "key-value" }, String(value ?? "–")),
    h("span", { class: "key-label" }, t(`stats.${key}`)))));
  const mains = (state.taxonomy?.categories || []).map((c) => [categoryName(c), s.by_primary_main_category?.[c.code] || 0]);
  $("chart-main").replaceChildren(barChart(mains, { title: tr("Samtaler etter hovedkategori"), small }));
  const subs = Object.entries(s.by_primary_category || {}).filter(([code, n]) => code.includes(".") && n > 0)
    .sort((a, b) => b[1] - a[1]).slice(0, 10).map(([code, n]) => [labelOf(code).split(" › ")[1] || code, n]);
  $("chart-sub").replaceChildren(subs.length ? barChart(subs, { title: tr("De vanligste underkategoriene"), small })
    : h("p", { class: "muted" }, tr("Ingen kodede underkategorier i perioden.")));
  $("chart-heat").replaceChildren(heatmap(s.hour_by_weekday || {}, { title: tr("Samtaler per time og ukedag"), small }));
  const waitBox = $("chart-wait");
  if (Array.isArray(s.wait_histogram) && s.wait_histogram.length) {
    waitBox.replaceChildren(barChart(s.wait_histogram.map((b) => [b.label || `≤ ${mins(b.le)}`, b.count]), { title: tr("Ventetid"), vertical: true, small }));
  } else {
    waitBox.replaceChildren(percentileChart(s.wait_s || {}, s.abandoned_wait_s || {}, { title: tr("Ventetid, persentiler"), small }));
  }
  const genders = Object.entries(s.by_gender || {}).map(([k, n]) => [tr(GENDER[k] || (k === "unknown" ? "Ikke kodet" : k)), n]);
  const ages = Object.entries(s.by_age_band || {}).map(([k, n]) => [k === "unknown" ? tr("ukjent alder") : tr("{age} år", { age: k }), n]);
  $("chart-who").replaceChildren(barChart([...genders, ...ages], { title: tr("Kjønn og aldersgruppe"), small }));
}
export async function statsCsv() {
  const status = await download(`/api/v1/stats?${statsRange()}&format=csv`, state.token,
    `chatvakt-statistikk-${$("stats-from").value}-${$("stats-to").value}.csv`);
  if (status !== 200) { $("stats-error").textContent = tr("Kunne ikke laste ned CSV ({status}).", { status }); $("stats-error").hidden = false; }
}

export function showView(view) {
  $("work").hidden = view !== "work";
  $("alerts").hidden = false;
  $("stats").hidden = view !== "stats";
  for (const tab of document.querySelectorAll(".tab")) {
    if (tab.dataset.view === view) tab.setAttribute("aria-current", "page"); else tab.removeAttribute("aria-current");
  }
  if (view === "stats") {
    if (!$("stats-from").value) {
      const today = new Date();
      const from = new Date();
      from.setDate(today.getDate() - 6);
      $("stats-from").value = dayString(from);
      $("stats-to").value = dayString(today);
    }
    loadStats();
  }
}

