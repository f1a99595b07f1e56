// Alerts: stay until acknowledged, say it out loud, flash the title.
import { h, missing } from "/static/common/net.js";
import { KIND, t, tr, riskWords, reasonWords } from "/static/console/i18n.js";
import { $, state, who, short, clock, call, problem } from "/static/console/api.js";
import { focusOrOpen } from "/static/console/chatcard.js";

// -- alerts: stay until acknowledged, say it out loud, flash the title -----------
// One banner per alert (a repeat refreshes it); acknowledging tells the server,
// which tells every console (escalation.alert_acked) so nobody chases it twice.
// The server keeps one open alert per chat and kind: the screen's finding and the
// child's own "I am in danger" share it, and it keeps every category found for it
// (`categories`, most severe first), so a reload or a later login shows them all
// (issue 13). A live finding names only its own category: the console adds it to
// those it was told of, so the later one never hides the screen's.
const findings = new Map();
function categoryWords(key, data) {
  const seen = findings.get(key) || new Map();
  if (data.kind !== "acute_danger") {
    (data.categories || []).forEach((code, at) => seen.set(code, data.categories_words?.[at] ?? seen.get(code)));
    if (data.category && !seen.has(data.category)) seen.set(data.category, data.category_words);
  }
  findings.set(key, seen);
  return [...seen].sort(([a], [b]) => (a === "self_report") - (b === "self_report"))
    .map(([code, words]) => riskWords(code, words)).join(", ");
}
export function raiseAlert(data, ring = true) {
  const key = data.alert_id || `local-${data.escalation_id || data.chat_id}`;
  const words = categoryWords(key, data);
  const known = state.chats.get(data.chat_id);
  const label = known ? who(known.gender, known.age) : `chat ${short(data.chat_id)}`;
  const severe = data.severity === "high" || data.kind === "acute_danger";
  const old = $("alerts").querySelector(`[data-alert="${CSS.escape(key)}"]`);
  const card = h("div", { class: `alert ${severe ? "high" : "medium"}${data.raised ? " raised" : ""}`, role: "alert",
    "data-alert": key, "data-chat-id": data.chat_id },
    // the categories in words; the kind ("Risiko", "Akutt fare") only when there are none (never "Risiko: Risiko")
    h("strong", {}, `${t(severe ? "alert.acute" : "alert.risk")}: ${words || tr(KIND[data.kind] || data.kind || "risk")}`),
    h("span", {}, ` ${label}. ${reasonWords(data.reason)}`),
    data.repeat ? h("span", { class: "pill repeat" }, tr("Ikke kvittert – varslet {n}. gang", { n: data.repeat + 1 })) : null,
    data.raised ? h("span", { class: "pill raised" }, t("alert.raised")) : null,
    h("span", { class: "alert-time" }, clock(data.detected_at || new Date().toISOString())),
    h("button", { type: "button", class: "primary", onclick: () => { focusOrOpen(data.chat_id); } }, t("alert.open")),
    h("button", { type: "button", class: "ghost", onclick: () => acknowledge(card, data) }, t("alert.ack")),
    h("span", { class: "alert-error small", role: "status" }));
  if (old) old.replaceWith(card); else $("alerts").prepend(card);
  updateTitle();
  if (ring) beep(severe || data.raised);
}
// A quick exit is not an alert to acknowledge on the server, but the supervisor
// and the chat's counsellor must not take it for an ordinary end.
export function quickExitNotice(chatId) {
  const key = `quick-${chatId}`;
  if ($("alerts").querySelector(`[data-alert="${CSS.escape(key)}"]`)) return;
  const card = h("div", { class: "alert quick", role: "alert", "data-alert": key, "data-chat-id": chatId },
    h("strong", { class: "quick-who" }, quickLabel(chatId)), h("span", { "data-i18n": "quick-exit" }, t("quick-exit")),
    h("button", { type: "button", class: "ghost", onclick: () => { card.remove(); updateTitle(); } }, "OK"));
  $("alerts").prepend(card);
  updateTitle();
}
function quickLabel(chatId) {
  const known = state.chats.get(chatId);
  return `${known ? who(known.gender, known.age) : `chat ${short(chatId)}`} #${short(chatId)}: `;
}
export async function acknowledge(card, data) {
  if (data.local || !data.alert_id) { card.remove(); updateTitle(); return; }
  const result = await call("POST", `/api/v1/alerts/${data.chat_id}/ack`, { alert_id: data.alert_id });
  if (result.ok || result.status === 404 && !missing(result)) {
    card.remove();
    updateTitle();
  } else {
    card.querySelector(".alert-error").textContent = tr("Ikke kvittert: {why}", { why: problem(result) });
  }
}
export function clearAlerts(chatId, alertIds, ackedBy) {
  for (const card of [...$("alerts").querySelectorAll(".alert")]) {
    if (alertIds.includes(card.dataset.alert)) card.remove();
  }
  updateTitle();
}
// redraw: the language changed, so every open banner is drawn again in it.
export async function refreshAlerts(redraw = false) {
  if (!state.token) return;
  const result = await call("GET", "/api/v1/alerts");
  if (!result.ok) return;
  const open = new Set();
  for (const alert of result.data.alerts || []) {
    open.add(alert.alert_id);
    const shown = $("alerts").querySelector(`[data-alert="${CSS.escape(alert.alert_id)}"]`);
    if (!shown || redraw) raiseAlert(alert, !redraw);
  }
  // a quick exit's notice names the child in the console's language too
  if (redraw) for (const node of $("alerts").querySelectorAll(".alert.quick .quick-who")) node.textContent = quickLabel(node.parentElement.dataset.chatId);
  for (const card of [...$("alerts").querySelectorAll(".alert")]) {
    if (!card.dataset.alert.startsWith("local-") && !card.dataset.alert.startsWith("quick-") && !open.has(card.dataset.alert)) card.remove();
  }
  updateTitle();
}
export function updateTitle() {
  const count = $("alerts").children.length;
  // waitingNote: the words' key and who waits, so the title follows a language switch
  const note = state.waitingNote;
  document.title = count ? `(${count}) ${t("title.alert")} – chatvakt`
    : note ? `● ${t(note.key)}: ${note.who} – chatvakt` : t("title.idle");
}
export let audio = null;
export function beep(severe) {
  try {
    audio = audio || new AudioContext();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = severe ? 880 : 660;
    gain.gain.value = 0.08;
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + (severe ? 0.6 : 0.25));
  } catch (error) { /* no sound available: the banner stays anyway */ }
}

