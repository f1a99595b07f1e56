// Presence, the queue, offers, coding reminders and colleagues.
import { h } from "/static/common/net.js";
import { $, state, who, short, clock, since, call, problem, save } from "/static/console/api.js";
import { tick } from "/static/console/lists.js";
import { openChat, renderCard } from "/static/console/chatcard.js";
import { bothLanguages, priorityWords, reasonWords, t, tr } from "/static/console/i18n.js";
import { queueUpdated, check } from "/static/console/waiting.js";

// -- presence ----------------------------------------------------------------
export async function setPresence(status, capacity, optIn) {
  const body = { status, capacity };
  if (optIn !== undefined) body.opt_in = optIn;
  const result = await call("PUT", "/api/v1/presence", body);
  if (result.ok) {
    state.presence = result.data;
    save();
  } else {
    $("queue-error").textContent = problem(result);
    $("queue-error").hidden = false;
  }
  renderPresence();
}
export async function loadPresence() {
  const result = await call("GET", "/api/v1/presence");
  if (result.ok) state.presence = result.data;
  renderPresence();
}
export function inCooldown(presence) {
  return Boolean(presence?.cooldown_until && new Date(presence.cooldown_until) > new Date());
}
export function renderPresence() {
  const presence = state.presence || { status: "offline", capacity: Number($("capacity").value), active_chats: 0 };
  $("presence-status").value = presence.status;
  $("capacity").value = presence.capacity || 3;
  const mine = [...state.chats.values()].filter((chat) => !chat.watch && chat.status === "active").length;
  $("load").textContent = tr("{mine} av {cap} samtaler", { mine, cap: presence.capacity || "–" });
  document.body.dataset.presence = presence.status;
  // After a chat with acute danger: a pause before the next chat, unless the counsellor says they are ready.
  const pause = inCooldown(presence);
  const box = $("cooldown");
  box.hidden = !pause;
  if (!pause) box.open = false;
  box.classList.toggle("opted-in", Boolean(pause && presence.cooldown_opt_in));
  $("cooldown-pill").textContent = !pause ? "" : presence.cooldown_opt_in
    ? t("cooldown-off") : `${t("cooldown-until")} ${clock(presence.cooldown_until)}`;
  $("cooldown-why").textContent = !pause ? "" : presence.cooldown_opt_in ? t("cooldown-off-why") : t("cooldown-why");
  $("opt-in").hidden = !pause || Boolean(presence.cooldown_opt_in);
}

// -- offers (auto-assign): a chat offered to me for a short while --------------------
export function renderOffers(note) {
  const list = $("offers");
  list.replaceChildren(...[...state.offers.values()].map((offer) => h("li", { class: `offer ${offer.risk ? "risk" : ""}`, "data-chat-id": offer.chat_id },
    h("strong", {}, tr("Tilbud: {who}", { who: who(offer.gender, offer.age) })),
    offer.risk ? h("span", { class: "pill risk" }, t("risk")) : null,
    offer.reason ? h("p", { class: "q-reason small" }, reasonWords(offer.reason)) : null,
    h("div", { class: "row" },
      h("span", { class: "small", "data-expires": offer.expires_at }),
      h("button", { type: "button", class: "primary small-btn", onclick: () => answerOffer(offer, true) }, tr("Ta samtalen")),
      h("button", { type: "button", class: "ghost small-btn", onclick: () => answerOffer(offer, false) }, tr("Avslå"))))));
  if (note) list.append(h("li", { class: "muted small offer-note" }, note));
  tick();
}
export async function answerOffer(offer, accept) {
  const result = await call("POST", `/api/v1/queue/offers/${offer.chat_id}/${accept ? "accept" : "decline"}`, {});
  state.offers.delete(offer.chat_id);
  if (!result.ok) {
    renderOffers(result.status === 404 ? tr("Tilbudet gjelder ikke lenger.") : problem(result));
    return;
  }
  renderOffers();
  if (accept) {
    const chat = await openChat(offer.chat_id, { risk: offer.risk, reason: offer.reason });
    chat?.card.querySelector("textarea").focus();
  }
  refreshQueue();
}

// -- coding reminders ----------------------------------------------------------------
export function codingReminder(data) {
  if (!data.reminder && !data.overdue) return;
  const box = $("coding-reminder");
  const count = data.uncoded ?? Number($("uncoded-count").textContent);
  box.textContent = tr("{kind}: {count} {are} ikke kodet.", { kind: tr(data.overdue ? "Siste påminnelse" : "Påminnelse"), count,
    are: tr(count === 1 ? "samtale er" : "samtaler er") }) + (data.overdue ? tr(" Vakthavende får beskjed.") : "");
  box.classList.toggle("overdue", Boolean(data.overdue));
  box.hidden = false;
}
export function renderOverdue() {
  const items = [...state.overdue.values()];
  $("overdue-count").textContent = items.length;
  $("overdue-count").classList.toggle("warn", items.length > 0);
  $("overdue").replaceChildren(...items.map((item) => h("li", {},
    h("span", {}, `chat ${short(item.chat_id)} · ${state.colleagues.get(item.counsellor_id)?.name || short(item.counsellor_id) || tr("Ukjent")}${item.uncoded ? ` · ${item.uncoded} ${tr("ukodet")}` : ""}`),
    h("button", { type: "button", class: "ghost small-btn", onclick: () => { state.overdue.delete(item.chat_id); renderOverdue(); } }, tr("Fulgt opp")))));
  if (!items.length) $("overdue").append(h("li", { class: "muted" }, tr("Ingen.")));
}
export async function loadColleagues() {
  const result = await call("GET", "/api/v1/counsellors");
  if (!result.ok) return [];
  const people = result.data.counsellors || [];
  for (const person of people) state.colleagues.set(person.id, person);
  return people;
}
export function noteColleague(data) {
  const person = data.counsellor_name || state.colleagues.get(data.counsellor_id)?.name || short(data.counsellor_id);
  // kept as data, not words: the note follows a language switch (renderQueue)
  state.colleagueNote = { person, until: data.state === "started" ? data.until : null };
  renderQueue();
}

// -- queue --------------------------------------------------------------------
export async function refreshQueue() {
  const result = await call("GET", "/api/v1/queue");
  if (result.ok) {
    state.queue = result.data.waiting || [];
    state.queueCount = state.queue.length;
    state.available = result.data.available_counsellors;
    if (result.data.wait_warn_s) state.waitWarnS = result.data.wait_warn_s;
    if ("flood" in result.data) state.flood = result.data.flood;
    renderQueue();
    queueUpdated(state.queue);
  }
}
export let queueRefreshTimer = null;
export function refreshQueueSoon() {
  if (queueRefreshTimer) return;
  queueRefreshTimer = setTimeout(() => { queueRefreshTimer = null; refreshQueue(); }, 3000);
}
export function floodNote() {
  const f = state.flood;
  if (!f) return "";
  return ` · ${tr("Mulig flom: {n} mistenkelige samtaler fra {sources} {kind} siden {at} (betjenes sist)",
    { n: f.suspect_waiting, sources: f.sources, kind: tr(f.sources === 1 ? "kilde" : "kilder"), at: clock(f.since) })}`;
}
function colleagueNote() {
  const note = state.colleagueNote;
  if (!note) return "";
  return ` · ${note.until ? tr("{person} har pause til {until}.", { person: note.person, until: clock(note.until) })
    : tr("{person} er klar igjen.", { person: note.person })}`;
}
export function renderQueue() {
  $("queue-count").textContent = state.queueCount ?? state.queue.length;
  $("queue-info").textContent = `${state.available ?? "–"} ${tr(state.available === 1 ? "tilgjengelig veileder" : "tilgjengelige veiledere")}${colleagueNote()}${floodNote()}`;
  $("queue").replaceChildren(...state.queue.map((entry, index) => h("li", { class: `q ${entry.risk ? "risk" : ""}`, "data-chat-id": entry.chat_id },
    h("div", { class: "q-main" },
      h("strong", {}, `${index + 1}. ${who(entry.gender, entry.age)}`),
      entry.risk ? h("span", { class: "pill risk" }, t("risk")) : null,
      entry.priority_source === "self_report" ? h("span", { class: "pill warn" }, t("self-report")) : null,
      entry.priority ? h("span", { class: "pill" }, priorityWords(entry.priority)) : null),
    entry.reason ? h("p", { class: "q-reason small" }, reasonWords(entry.reason)) : null,
    h("div", { class: "q-foot small" },
      h("span", {}, `${t("waits")} `), h("span", { "data-since": entry.waiting_since }, since(entry.waiting_since)),
      riskMarkButton(entry.chat_id, entry.risk, who(entry.gender, entry.age)),
      h("button", { type: "button", class: "ghost small-btn", onclick: () => take(entry.chat_id),
        "aria-label": tr("Ta {who}", { who: who(entry.gender, entry.age) }) }, tr("Ta"))))));
  check(state.queue);
}
// -- issue 14: marking risk by hand -----------------------------------------------
// One button on a queue row and on a chat card, one call. The reason goes sealed
// to the escalation service as a labelled example for retraining.
export function riskMarkButton(chatId, risky, label, chat = null) {
  return h("button", { type: "button", class: "ghost small-btn act-risk",
    "aria-label": `${risky ? t("mark-off") : t("mark-on")}: ${label}`,
    onclick: () => markRisk(chatId, chat ? !chat.flags.length : !risky, chat) },
  risky ? t("mark-off") : t("mark-on"));
}
export async function markRisk(chatId, atRisk, chat) {
  const reason = window.prompt(atRisk ? t("mark-why-on") : t("mark-why-off"));
  if (!reason || !reason.trim()) return;
  const result = await call("POST", `/api/v1/chats/${chatId}/risk`, { at_risk: atRisk, reason: reason.trim() });
  if (!result.ok) {
    $("queue-error").textContent = problem(result);
    $("queue-error").hidden = false;
    return;
  }
  if (chat) {
    chat.flags = atRisk ? [...chat.flags, { kind: "risk", reason: bothLanguages("marked-by-hand") }] : [];
    renderCard(chat);
  }
  refreshQueue();
}

export async function take(chatId) {
  $("queue-error").hidden = true;
  $("go-available").hidden = true;
  const result = await call("POST", "/api/v1/queue/take", chatId ? { chat_id: chatId } : {});
  if (result.status === 204) {
    $("queue-error").textContent = tr("Ingen venter i køen.");
    $("queue-error").hidden = false;
  } else if (result.status === 409 && result.data?.error?.code === "not_available") {
    // Offline or away: say so, and offer the one click that fixes it.
    $("queue-error").textContent = t("not-available");
    $("queue-error").hidden = false;
    const button = $("go-available");
    button.hidden = false;
    button.onclick = async () => {
      button.hidden = true;
      await setPresence("available", Number($("capacity").value) || 3);
      if (state.presence?.status === "available") take(chatId);
    };
    button.focus();
  } else if (!result.ok) {
    $("queue-error").textContent = result.status === 409 ? tr("Kan ikke ta samtalen: {why}", { why: result.data?.error?.message || tr("du har nådd kapasiteten din, har pause eller er ikke tilgjengelig.") }) : problem(result);
    $("queue-error").hidden = false;
  } else {
    const chat = await openChat(result.data.chat_id, { risk: result.data.risk, reason: result.data.reason });
    if (chat && result.data.risk && !chat.flags.length) {
      chat.flags.push({ kind: "risk", reason: result.data.reason });
      renderCard(chat);
    }
    chat?.card.querySelector("textarea").focus();
    refreshQueue();
  }
}

