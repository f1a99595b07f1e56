// The side lists: mine, uncoded, all (supervisor); the once-a-second tick.
import { h, missing } from "/static/common/net.js";
import { PHASES, reasonWords, t, tr } from "/static/console/i18n.js";
import { $, state, supervisor, who, short, since, dateTime, call } from "/static/console/api.js";
import { renderPresence } from "/static/console/queue.js";
import { focusOrOpen, openChat, renderTimes } from "/static/console/chatcard.js";
import { check } from "/static/console/waiting.js";
import { openCoding } from "/static/console/coding.js";

// -- the lists: mine, uncoded, all (supervisor), escalations -----------------------
export async function loadActive(openIds) {
  const result = await call("GET", "/api/v1/chats?status=active");
  const ids = new Set(openIds);
  if (missing(result)) state.features.list = false;
  else if (result.ok) {
    const chats = result.data.chats || [];
    if (supervisor()) renderAllChats(chats);
    for (const chat of chats) if (chat.counsellor?.id === state.me.id) ids.add(chat.chat_id);
  }
  for (const id of ids) await openChat(id);
}
export async function refreshAllChats() {
  if (!state.features.list) return;
  const result = await call("GET", "/api/v1/chats?status=active");
  if (missing(result)) { state.features.list = false; $("all-missing").hidden = false; return; }
  if (result.ok) renderAllChats(result.data.chats || []);
}
export function renderAllChats(chats) {
  $("all-chats").replaceChildren(...chats.map((chat) => h("li", {},
    h("span", {}, `${who(chat.gender, chat.age)} · ${chat.counsellor?.name || tr("ingen")} · ${tr(PHASES.find((p) => p.code === chat.phase)?.label || "")}`),
    chat.risk ? h("span", { class: "pill risk", title: reasonWords(chat.reason) }, chat.acute_danger ? t("acute") : t("risk")) : null,
    h("button", { type: "button", class: "ghost small-btn", onclick: () => focusOrOpen(chat.chat_id) },
      chat.counsellor?.id === state.me.id ? tr("Åpne") : tr("Se og hvisk")))));
  if (!chats.length) $("all-chats").append(h("li", { class: "muted" }, tr("Ingen aktive samtaler.")));
}
export async function refreshUncoded() {
  const result = await call("GET", "/api/v1/coding/uncoded");
  if (!result.ok) return;
  const chats = result.data.chats || [];
  $("uncoded-count").textContent = chats.length;
  $("uncoded-count").classList.toggle("warn", chats.length > 0);
  $("uncoded").replaceChildren(...chats.map((chat) => h("li", {},
    h("span", {}, `${dateTime(chat.started_at)} · ${short(chat.chat_id)}`),
    h("button", { type: "button", class: "ghost small-btn", onclick: () => openCoding(chat.chat_id) }, t("act-code")))));
  if (!chats.length) $("uncoded").append(h("li", { class: "muted" }, tr("Alt er kodet.")));
}
export function renderMine() {
  const mine = [...state.chats.values()];
  $("mine").replaceChildren(...mine.map((chat) => h("li", {},
    h("span", {}, `${who(chat.gender, chat.age)}${chat.watch ? tr(" (ser på)") : ""}`),
    chat.unread ? h("span", { class: "pill unread" }, tr("{n} nye", { n: chat.unread })) : null,
    h("button", { type: "button", class: "ghost small-btn", onclick: () => focusOrOpen(chat.id) }, tr("Vis")))));
  if (!mine.length) $("mine").append(h("li", { class: "muted" }, tr("Ingen.")));
  $("no-chats").hidden = mine.length > 0;
  renderPresence();
}
// Once a second: wait times and deadlines.
export function tick() {
  for (const chat of state.chats.values()) renderTimes(chat);
  for (const node of document.querySelectorAll("[data-since]")) node.textContent = since(node.dataset.since);
  check();
  for (const node of document.querySelectorAll("[data-deadline]")) {
    const left = new Date(node.dataset.deadline).getTime() - Date.now();
    const minutes = Math.round(Math.abs(left) / 60000);
    const text = minutes >= 2880 ? tr("{n} døgn", { n: Math.round(minutes / 1440) }) : minutes >= 120 ? tr("{n} t", { n: Math.round(minutes / 60) }) : `${minutes} min`;
    node.textContent = left < 0 ? tr("Frist passert for {text} siden", { text }) : tr("Frist om {text} ({at})", { text, at: dateTime(node.dataset.deadline) });
    node.classList.toggle("overdue", left < 0);
  }
  for (const node of document.querySelectorAll("[data-expires]")) {
    const left = Math.max(0, Math.round((new Date(node.dataset.expires).getTime() - Date.now()) / 1000));
    node.textContent = tr("svar innen {n} s", { n: left });
  }
}

