// One card per open chat: the transcript, the composer, phases, transfer.
import { h, missing } from "/static/common/net.js";
import { TYPING_EVERY_MS, TYPING_SHOWN_MS, PHASES, ALWAYS, PHRASES, PRESENCE, lang, t, tr, applyTr, riskWords, reasonWords, span, linkify } from "/static/console/i18n.js";
import { $, state, supervisor, who, short, clock, call, problem, save } from "/static/console/api.js";
import { renderMine } from "/static/console/lists.js";
import { openCoding } from "/static/console/coding.js";
import { riskMarkButton } from "/static/console/queue.js";
import { openEscalation, loadChatEscalations } from "/static/console/escalation.js";
import { showView } from "/static/console/stats.js";

// -- chat cards ------------------------------------------------------------------
export async function focusOrOpen(chatId) {
  const chat = state.chats.get(chatId) || await openChat(chatId);
  if (chat) {
    showView("work");
    chat.card.scrollIntoView({ block: "nearest" });
    chat.card.querySelector("textarea").focus();
  }
}

// One card per chat, however many events and clicks ask for it at once.
export const opening = new Map();
export function openChat(chatId, extra = {}) {
  if (state.chats.has(chatId)) return Promise.resolve(state.chats.get(chatId));
  if (!opening.has(chatId)) {
    opening.set(chatId, buildChat(chatId, extra).finally(() => opening.delete(chatId)));
  }
  return opening.get(chatId);
}

export async function buildChat(chatId, extra) {
  const result = await call("GET", `/api/v1/chats/${chatId}`);
  if (!result.ok) return null;
  const info = result.data;
  const chat = {
    id: chatId, status: info.status, gender: info.gender, age: info.age, phase: info.phase || "opening",
    counsellor: info.counsellor, lastSeq: 0, unread: 0, seen: new Set(), flags: [], escalations: [],
    watch: Boolean(info.counsellor?.id && info.counsellor.id !== state.me.id),
    mode: "child", typingAt: 0, endedBy: info.ended_by, startedAt: info.started_at,
    assignedAt: info.assigned_at, endedAt: info.ended_at, childLang: info.lang || null, folded: false,
  };
  // issue 13: the risk marker and the flagged messages come from the server, so they survive a reload
  for (const flag of info.flags || []) chat.flags.push(flag);
  if (info.acute_danger && !chat.flags.some((f) => f.category === "acute_danger")) chat.flags.push({ kind: "acute_danger", category: "acute_danger", reason: info.reason });
  if (extra.risk && !chat.flags.length) chat.flags.push({ kind: "risk", reason: extra.reason, seq: extra.seq });
  chat.card = buildCard(chat);
  state.chats.set(chatId, chat);
  $("chats").append(chat.card);
  renderCard(chat);
  renderMine();
  save();
  await syncChat(chat);
  loadChatEscalations(chat);
  return chat;
}

export function buildCard(chat) {
  const card = $("chat-template").content.firstElementChild.cloneNode(true);
  card.id = `chat-${chat.id}`;
  card.dataset.chatId = chat.id;
  const textarea = card.querySelector("textarea");
  textarea.id = `text-${chat.id}`;
  card.querySelector(".compose-row label").htmlFor = textarea.id;
  for (const node of card.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  card.querySelector(".close-card").addEventListener("click", () => closeCard(chat));
  // An ended and coded chat folds to one line; one click shows it again.
  card.querySelector(".unfold").addEventListener("click", () => { chat.folded = false; renderCard(chat); });
  card.addEventListener("focusin", () => markRead(chat));
  card.addEventListener("pointerdown", () => markRead(chat));
  // phases
  const phases = card.querySelector(".phases");
  PHASES.forEach((phase, index) => {
    phases.append(h("li", {}, h("button", { type: "button", class: "phase", "data-phase": phase.code,
      onclick: () => setPhase(chat, phase.code) }, `${index + 1}. ${tr(phase.label)}`)));
  });
  // modes: to the child, internal note, whisper (supervisor)
  const modes = card.querySelector(".modes");
  const options = [["child", "Til barnet"], ["note", "Internt notat"]];
  if (supervisor()) options.push(["whisper", "Hvisk til chatverten"]);
  for (const [value, label] of options) {
    modes.append(h("label", {}, h("input", { type: "radio", name: `mode-${chat.id}`, value,
      onchange: () => { chat.mode = value; renderCard(chat); } }), " ", h("span", { "data-tr": label }, tr(label))));
  }
  // phrases
  const select = card.querySelector(".phrases");
  phraseOptions(select);
  select.addEventListener("change", () => {
    if (select.value === "") return;
    const text = fill(tr(PHRASES[Number(select.value)][1]));
    textarea.value = textarea.value ? `${textarea.value} ${text}` : text;
    select.value = "";
    textarea.focus();
  });
  textarea.addEventListener("input", () => typed(chat));
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      card.querySelector(".composer").requestSubmit();
    }
  });
  card.querySelector(".composer").addEventListener("submit", (event) => { event.preventDefault(); sendFrom(chat); });
  card.querySelector(".act-code").addEventListener("click", () => openCoding(chat.id));
  card.querySelector(".act-escalate").addEventListener("click", () => openEscalation(chat));
  card.querySelector(".act-escalate").after(riskMarkButton(chat.id, null, who(chat.gender, chat.age), chat));
  card.querySelector(".act-transfer").addEventListener("click", () => openTransfer(chat));
  card.querySelector(".act-end").addEventListener("click", () => endChat(chat));
  return card;
}

// The ready phrases in the console's language (the child may read English too).
export function phraseOptions(select) {
  select.dataset.lang = lang.now;
  select.replaceChildren(h("option", { value: "" }, tr("– velg –")),
    ...PHRASES.map(([label, text], index) => h("option", { value: index }, `${tr(label)}: ${fill(tr(text))}`)));
}
export function fill(text) {
  return text.replace("{first}", (state.me?.name || "").split(/\s+/)[0]);
}

export function renderCard(chat) {
  const card = chat.card;
  if (chat.watch && chat.mode === "child" && supervisor()) chat.mode = "whisper";
  card.classList.toggle("watching", chat.watch);
  card.classList.toggle("ended", chat.status !== "active" && chat.status !== "waiting");
  card.querySelector(".chat-title").textContent =
    `${who(chat.gender, chat.age)}${chat.watch ? ` – ${chat.counsellor?.name || ""}` : ""}`;
  // Two children both "Ukjent" are told apart by a short reference.
  card.querySelector(".chat-ref").textContent = `#${short(chat.id)}`;
  const log = card.querySelector(".log");
  log.setAttribute("aria-label", `${t("transcript")} ${who(chat.gender, chat.age)} #${short(chat.id)}`);
  const banner = card.querySelector(".quick-exit-banner");
  banner.hidden = chat.endedBy !== "quick_exit";
  banner.textContent = t("quick-exit");
  card.classList.toggle("quick-exit", chat.endedBy === "quick_exit");
  const lang = card.querySelector(".child-lang");
  lang.hidden = !chat.childLang || chat.childLang === "nb";
  lang.textContent = chat.childLang === "en" ? "English" : "";
  lang.title = chat.childLang === "en" ? t("child-lang-en") : "";
  renderTimes(chat);
  card.classList.toggle("folded", Boolean(chat.folded));
  card.querySelector(".fold-bar").hidden = !chat.folded;
  const stateText = { active: "aktiv", waiting: "venter", ended: "avsluttet", abandoned: "forlatt",
    timed_out: "avsluttet (stille lenge)" }[chat.status];
  card.querySelector(".state").textContent = chat.endedBy === "quick_exit" ? tr("avsluttet (rask utgang)") : stateText ? tr(stateText) : chat.status;
  const unread = card.querySelector(".unread");
  unread.hidden = !chat.unread;
  unread.textContent = tr("{n} nye", { n: chat.unread });
  const risky = chat.flags.length > 0;
  const risk = card.querySelector(".risk");
  risk.hidden = !risky;
  risk.textContent = chat.flags.some((f) => f.kind === "acute_danger") ? t("acute") : t("risk");
  const flags = card.querySelector(".flags");
  flags.hidden = !risky;
  // Category in words, then the reason; never a code like "suicide".
  // A reason from the server already names the category in words (issue 13); one line per distinct reason.
  flags.textContent = risky ? `${t("flags")}: ${[...new Set(chat.flags.map((f) => reasonWords(f.reason) || riskWords(f.category, f.category_words)))].join("; ")}` : "";
  markFlagged(chat);
  for (const node of card.querySelectorAll('.log .who[data-who="child"]')) node.textContent = who(chat.gender, chat.age);
  const index = PHASES.findIndex((p) => p.code === chat.phase);
  for (const button of card.querySelectorAll(".phase")) {
    const at = PHASES.findIndex((p) => p.code === button.dataset.phase);
    button.classList.toggle("done", at < index);
    if (at === index) button.setAttribute("aria-current", "step"); else button.removeAttribute("aria-current");
    button.disabled = !state.features.phase || chat.status !== "active";
  }
  card.querySelector(".phase-hint").textContent = `${tr(PHASES[Math.max(0, index)].hint)} ${tr(ALWAYS)}`;
  // The console's language may have changed since the card was built: phases and phrases follow it.
  PHASES.forEach((phase, at) => { const b = card.querySelectorAll(".phase")[at]; if (b) b.textContent = `${at + 1}. ${tr(phase.label)}`; });
  const phrases = card.querySelector(".phrases");
  if (phrases.dataset.lang !== lang.now) phraseOptions(phrases);
  applyTr(card);
  for (const input of card.querySelectorAll(".modes input")) {
    input.checked = input.value === chat.mode;
    const disabled = (input.value === "note" && !state.features.notes) ||
      (input.value === "whisper" && !state.features.whisper) || (input.value === "child" && chat.watch && !supervisor());
    input.disabled = disabled;
    input.parentElement.hidden = disabled;
  }
  const open = chat.status === "active" || chat.status === "waiting";
  card.querySelector(".composer").hidden = !open && chat.mode === "child";
  card.querySelector(".send").textContent = tr(chat.mode === "note" ? "Lagre notat" : chat.mode === "whisper" ? "Hvisk" : "Send");
  card.querySelector("textarea").placeholder = tr(chat.mode === "note" ? "Internt notat – barnet ser det ikke"
    : chat.mode === "whisper" ? "Bare chatverten ser dette" : "Skriv til barnet …");
  const mark = card.querySelector(".act-risk");
  mark.textContent = risky ? t("mark-off") : t("mark-on");
  mark.setAttribute("aria-label", `${mark.textContent}: ${who(chat.gender, chat.age)}`);
  card.querySelector(".act-end").hidden = !open;
  card.querySelector(".act-transfer").hidden = !open || chat.watch;
  renderMine();
}

// issue 13: the child's message that a flag came from (by seq), marked in the transcript.
export function markFlagged(chat) {
  for (const flag of chat.flags) {
    const node = flag.seq != null && chat.card.querySelector(`.log [data-seq="${flag.seq}"]`);
    if (!node || node.classList.contains("flagged")) continue;
    node.classList.add("flagged");
    node.prepend(h("span", { class: "flag-mark" }, "⚑ ", h("span", { "data-i18n": "flagged" }, t("flagged"))));
  }
}

// Wait (queued → answered) and duration (answered → ended or now) on every card.
export function renderTimes(chat) {
  const node = chat.card.querySelector(".times");
  const start = Date.parse(chat.startedAt);
  if (Number.isNaN(start)) { node.textContent = ""; return; }
  const answered = Date.parse(chat.assignedAt);
  const end = Date.parse(chat.endedAt);
  const parts = [];
  if (!Number.isNaN(answered)) {
    parts.push(`${t("waited")} ${span((answered - start) / 1000)}`);
    parts.push(`${t("lasted")} ${span(((Number.isNaN(end) ? Date.now() : end) - answered) / 1000)}`);
  } else {
    parts.push(`${t("waits")} ${span(((Number.isNaN(end) ? Date.now() : end) - start) / 1000)}`);
  }
  node.textContent = parts.join(" · ");
}

export async function syncChat(chat) {
  const info = await call("GET", `/api/v1/chats/${chat.id}`);
  if (info.ok) {
    Object.assign(chat, { status: info.data.status, phase: info.data.phase || chat.phase,
      gender: info.data.gender, age: info.data.age, counsellor: info.data.counsellor,
      endedBy: info.data.ended_by || chat.endedBy, startedAt: info.data.started_at,
      assignedAt: info.data.assigned_at, endedAt: info.data.ended_at,
      childLang: info.data.lang || chat.childLang });
    chat.watch = Boolean(chat.counsellor?.id && chat.counsellor.id !== state.me.id);
  }
  const result = await call("GET", `/api/v1/chats/${chat.id}/messages?after=${chat.lastSeq}`);
  if (result.ok) for (const message of result.data.messages) addMessage(chat, message, false);
  renderCard(chat);
}

export function addMessage(chat, message, live) {
  if (chat.seen.has(message.seq)) return;
  chat.seen.add(message.seq);
  chat.lastSeq = Math.max(chat.lastSeq, message.seq);
  const internal = message.visibility && message.visibility !== "all";
  const kind = message.kind === "whisper" || message.visibility === "counsellor" ? "whisper" : internal ? "note" : message.sender;
  // issue 13: the child switched the page's language (a staff-only line from the chat service)
  const switched = message.kind === "lang";
  // data-i18n (or data-who for the child): the label follows a language switch (applyLanguage, renderCard)
  const key = switched ? "lang-switched" : kind === "whisper" ? "whisper-from" : kind === "note" ? "internal-note"
    : message.sender === "counsellor" ? "counsellor" : null;
  const label = key ? h("span", { class: "who", "data-i18n": key }, t(key))
    : message.sender === "child" ? h("span", { class: "who", "data-who": "child" }, who(chat.gender, chat.age)) : null;
  const li = h("div", { class: `msg ${message.sender} ${internal ? `internal ${kind}` : ""}${switched ? " lang-switch" : ""}`, "data-seq": message.seq },
    label,
    h("p", { class: "text" }, linkify(message.text)),
    h("span", { class: "meta" }, h("time", { datetime: message.sent_at }, clock(message.sent_at))));
  const log = chat.card.querySelector(".log");
  const after = [...log.children].find((node) => Number(node.dataset.seq) > message.seq);
  if (after) log.insertBefore(li, after); else log.append(li);
  if (chat.flags.some((f) => f.seq === message.seq)) markFlagged(chat);
  log.scrollTop = log.scrollHeight;
  if (switched && live) syncChat(chat);  // the card's language pill follows the switch
  if (message.sender === "child") {
    hideTyping(chat);
    if (live && (state.focused !== chat.id || document.hidden)) {
      chat.unread += 1;
      renderCard(chat);
    }
  }
}

export function markRead(chat) {
  state.focused = chat.id;
  if (chat.unread) {
    chat.unread = 0;
    renderCard(chat);
  }
}

export function showTyping(chat) {
  chat.card.querySelector(".typing").textContent = tr("{who} skriver …", { who: who(chat.gender, chat.age) });
  clearTimeout(chat.typingTimer);
  chat.typingTimer = setTimeout(() => hideTyping(chat), TYPING_SHOWN_MS);
}
export function hideTyping(chat) {
  clearTimeout(chat.typingTimer);
  chat.card.querySelector(".typing").textContent = "";
}

export function typed(chat) {
  const now = Date.now();
  if (chat.mode !== "child" || chat.status !== "active" || now - chat.typingAt < TYPING_EVERY_MS) return;
  chat.typingAt = now;
  if (state.live?.ready()) state.live.call("typing", { chat_id: chat.id });
}

export async function sendFrom(chat) {
  const card = chat.card;
  const box = card.querySelector("textarea");
  const error = card.querySelector(".compose-error");
  const text = box.value.trim();
  if (!text) return;
  error.hidden = true;
  const path = { child: "messages", note: "notes", whisper: "whisper" }[chat.mode];
  const body = chat.mode === "child" ? { text, client_msg_id: `${Date.now()}-${Math.random().toString(16).slice(2)}` } : { text };
  box.disabled = true;
  const result = await call("POST", `/api/v1/chats/${chat.id}/${path}`, body);
  box.disabled = false;
  if (missing(result) && chat.mode !== "child") {
    state.features[chat.mode === "note" ? "notes" : "whisper"] = false;
    chat.mode = "child";
    error.textContent = "Denne funksjonen er ikke tilgjengelig ennå.";
    error.hidden = false;
    renderCard(chat);
    return;
  }
  if (!result.ok) {
    error.textContent = problem(result);
    error.hidden = false;
    return;
  }
  box.value = "";
  box.focus();
  syncChat(chat);
}

export async function setPhase(chat, phase) {
  const before = chat.phase;
  chat.phase = phase;
  renderCard(chat);
  const result = await call("PUT", `/api/v1/chats/${chat.id}/phase`, { phase });
  if (missing(result)) {
    // Still useful as a local guide when the gateway cannot record it.
    state.features.phase = true;
    return;
  }
  if (!result.ok) {
    chat.phase = before;
    renderCard(chat);
    const error = chat.card.querySelector(".compose-error");
    error.textContent = problem(result);
    error.hidden = false;
  }
}

export async function endChat(chat) {
  if (!confirm("Avslutte samtalen for barnet også?")) return;
  const result = await call("POST", `/api/v1/chats/${chat.id}/end`, {});
  if (result.ok) {
    chat.status = result.data.status;
    renderCard(chat);
    openCoding(chat.id);
  } else {
    alert(problem(result));
  }
}

export function closeCard(chat) {
  if (chat.status === "active" && !chat.watch && !confirm("Samtalen er fortsatt aktiv. Lukke kortet likevel? Du finner den under «Mine samtaler» etter omlasting.")) return;
  chat.card.remove();
  state.chats.delete(chat.id);
  renderMine();
  save();
}

// -- transfer ----------------------------------------------------------------------
export let transferring = null;
export async function openTransfer(chat) {
  transferring = chat;
  $("transfer-error").hidden = true;
  $("t-note").value = "";
  $("t-to-id").value = "";
  const select = $("t-to");
  if (state.features.counsellors) {
    const result = await call("GET", "/api/v1/counsellors");
    if (missing(result)) state.features.counsellors = false;
    else if (result.ok) {
      const order = { available: 0, away: 1, offline: 2 };
      const people = (result.data.counsellors || []).filter((c) => c.id !== state.me.id && c.role !== "admin")
        .sort((a, b) => (order[a.status] ?? 3) - (order[b.status] ?? 3) || a.name.localeCompare(b.name, "nb"));
      for (const person of people) state.colleagues.set(person.id, person);
      select.replaceChildren(...people.map((c) => h("option", { value: c.id },
        `${c.name}${c.role === "supervisor" ? " (vakthavende)" : ""} – ${PRESENCE[c.status] || c.status}${c.capacity ? `, ${c.active_chats ?? 0} av ${c.capacity}` : ""}`)));
    }
  }
  const listed = state.features.counsellors && select.options.length > 0;
  select.hidden = !listed;
  $("t-to-id").hidden = listed;
  $("transfer-dialog").querySelector("label[for='t-to']").htmlFor = listed ? "t-to" : "t-to-id";
  $("transfer-dialog").showModal();
}
export async function saveTransfer(event) {
  event.preventDefault();
  const to = $("t-to").hidden ? $("t-to-id").value.trim() : $("t-to").value;
  const result = await call("POST", `/api/v1/chats/${transferring.id}/transfer`, { to, note: $("t-note").value.trim() || null });
  if (!result.ok) {
    $("transfer-error").textContent = problem(result);
    $("transfer-error").hidden = false;
    return;
  }
  $("transfer-dialog").close();
  await syncChat(transferring);
}

