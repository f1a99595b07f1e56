// The counsellor console (and the supervisor's view of it).
// Staff token in sessionStorage so a reload keeps the shift going; gone with the tab.
import { api, download, h, Live, missing } from "/static/common/net.js";
import { barChart, heatmap, percentileChart } from "/static/console/charts.js";

const STORE = "chatvakt-console";
const TYPING_EVERY_MS = 3000;
const TYPING_SHOWN_MS = 5000;

const PHASES = [
  { code: "opening", label: "Åpning", hint: "Hils og presenter deg med fornavn. Bygg relasjon og tillit – du er arkitekten som hjelper barnet å sortere." },
  { code: "request_and_goal", label: "Bestilling og mål", hint: "Spør etter barnets bestilling og mål: her og nå, og ønsket situasjon etter chatten. Spør – ikke anta (unngå bekreftelsesfella)." },
  { code: "options_for_action", label: "Handlingsalternativer", hint: "Hjelp barnet å finne handlingsalternativer. Avgrens hva dere jobber med i dag." },
  { code: "summary_and_close", label: "Oppsummere og avslutte", hint: "Oppsummer det dere har kommet fram til, og avslutt. Husk koding etterpå." },
];
const ALWAYS = "Vurder alltid om barnet er i akutt fare for liv og helse.";
const PHRASES = [
  ["Hilsen", "Hei, velkommen til Alarmtelefonen. Hva ønsker du å snakke med oss om?"],
  ["Presenter deg", "Hei, jeg heter {first}."],
  ["Hjelpe", "Hva kan jeg hjelpe deg med?"],
  ["Bestilling", "Hva ønsker du å sitte igjen med etter samtalen i dag?"],
  ["Utdype", "Kan du fortelle litt mer om det?"],
  ["Akutt fare", "Er du i fare akkurat nå? Er du trygg der du er?"],
  ["Voksen", "Er det en voksen du stoler på som du kan snakke med om dette?"],
  ["Alternativer", "Hva tenker du kan være lurt å gjøre videre?"],
  ["Oppsummere", "Hvis jeg skal oppsummere det vi har snakket om: "],
  ["Avslutte", "Du er alltid velkommen til å ta kontakt igjen. Vi er her hele døgnet på chat og på 116 111."],
];
const GENDER = { girl: "Jente", boy: "Gutt", other: "Annet", unspecified: "Ukjent" };
const KIND = { acute_danger: "Akutt fare", report_of_concern: "Bekymringsmelding", network_contact: "Nettverkskontakt",
  referral: "Henvisning", risk: "Risiko" };
const PRESENCE = { available: "tilgjengelig", away: "borte", offline: "frakoblet" };
const WITHDRAWN = { expired: "Tilbudet gikk ut og går videre til en annen.", declined: "Du avslo tilbudet.",
  away: "Tilbudet ble trukket fordi du ikke er tilgjengelig.", cooldown: "Tilbudet ble trukket: du har pause.",
  taken: "Samtalen ble tatt av en annen." };

const $ = (id) => document.getElementById(id);
const state = {
  token: null, me: null, live: null, chats: new Map(), queue: [], taxonomy: null, focused: null,
  features: { notes: true, whisper: true, phase: true, list: true, history: true, counsellors: true },
  services: null, presence: null, offers: new Map(), overdue: new Map(), colleagues: new Map(),
};
const supervisor = () => ["supervisor", "admin"].includes(state.me?.role);
const who = (gender, age) => `${GENDER[gender] || "Ukjent"} ${age ?? "?"}`;
const short = (id) => (id || "").slice(0, 6);

function clock(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString("nb-NO", { hour: "2-digit", minute: "2-digit" });
}
function since(iso) {
  const seconds = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60 ? `${minutes} min ${seconds % 60} s` : `${Math.floor(minutes / 60)} t ${minutes % 60} min`;
}
function dateTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "–" : date.toLocaleString("nb-NO", { dateStyle: "short", timeStyle: "short" });
}
const call = (method, path, body) => api(method, path, { token: state.token, body });
function problem(result) {
  if (result.offline) return "Ingen forbindelse med serveren.";
  const error = result.data?.error;
  if (!error) return `Feil (${result.status}).`;
  const fields = error.fields ? Object.entries(error.fields).map(([k, v]) => `${k}: ${v.join(" ")}`).join(" ") : "";
  return `${error.message}${fields ? ` ${fields}` : ""}`;
}

// -- login -------------------------------------------------------------------
async function login(event) {
  event.preventDefault();
  const result = await api("POST", "/api/v1/auth/login",
    { body: { username: $("username").value.trim(), password: $("password").value } });
  if (!result.ok) {
    $("login-error").textContent = result.status === 401 ? "Feil brukernavn eller passord." : problem(result);
    $("login-error").hidden = false;
    return;
  }
  state.token = result.data.token;
  state.me = result.data.counsellor;
  save();
  $("password").value = "";
  enter();
}

function save() {
  try {
    sessionStorage.setItem(STORE, JSON.stringify({ token: state.token, me: state.me, presence: state.presence,
      open: [...state.chats.keys()] }));
  } catch (error) { /* memory only */ }
}

async function logout() {
  await call("PUT", "/api/v1/presence", { status: "offline" });
  await call("POST", "/api/v1/auth/logout", {});
  try { sessionStorage.removeItem(STORE); } catch (error) { /* nothing */ }
  location.reload();
}

async function enter(openIds = []) {
  $("login-view").hidden = true;
  $("app").hidden = false;
  $("me-name").textContent = state.me.name;
  $("me-role").textContent = supervisor() ? "vakthavende" : "chatvert";
  $("me-role").title = `Din id: ${state.me.id}`;
  for (const node of document.querySelectorAll("[data-supervisor]")) node.hidden = !supervisor();
  state.live = new Live(state.token, { onEvent, onState }).start();
  const taxonomy = await call("GET", "/api/v1/taxonomy?lang=nb");
  if (taxonomy.ok) state.taxonomy = taxonomy.data;
  if (state.presence) await setPresence(state.presence.status, state.presence.capacity);
  else await loadPresence();
  renderMine();
  await Promise.all([refreshQueue(), refreshUncoded(), loadActive(openIds), refreshAlerts()]);
  if (supervisor()) { refreshEscalations(); loadColleagues(); }
  setInterval(tick, 1000);
  setInterval(() => { refreshQueue(); if (supervisor()) { refreshAllChats(); refreshEscalations(); } }, 20000);
}

// -- presence ----------------------------------------------------------------
async function setPresence(status, capacity, optIn) {
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
async function loadPresence() {
  const result = await call("GET", "/api/v1/presence");
  if (result.ok) state.presence = result.data;
  renderPresence();
}
function inCooldown(presence) {
  return Boolean(presence?.cooldown_until && new Date(presence.cooldown_until) > new Date());
}
function renderPresence() {
  const presence = state.presence || { status: "offline", capacity: Number($("capacity").value), active_chats: 0 };
  $("presence-status").value = presence.status;
  $("capacity").value = presence.capacity || 3;
  const mine = [...state.chats.values()].filter((chat) => !chat.watch && chat.status === "active").length;
  $("load").textContent = `${mine} av ${presence.capacity || "–"} samtaler`;
  document.body.dataset.presence = presence.status;
  // After a chat with acute danger: a pause before the next chat, unless the counsellor says they are ready.
  const pause = inCooldown(presence);
  const box = $("cooldown");
  box.hidden = !pause;
  box.classList.toggle("opted-in", Boolean(pause && presence.cooldown_opt_in));
  box.textContent = !pause ? "" : presence.cooldown_opt_in
    ? `Pause avbrutt – du får nye samtaler`
    : `Pause til ${clock(presence.cooldown_until)} etter akutt fare`;
  box.title = pause ? "Etter en samtale med akutt fare får du ingen nye samtaler på en stund. Snakk gjerne med vakthavende." : "";
  $("opt-in").hidden = !pause || Boolean(presence.cooldown_opt_in);
}

// -- socket events -------------------------------------------------------------
function onState(kind, info) {
  const line = $("conn");
  line.textContent = kind === "online" ? "Tilkoblet" : kind === "unauthorized" ? "Logget ut" : "Kobler til igjen …";
  line.className = `conn ${kind}`;
  if (kind === "online" && info?.reconnected) {
    // Fetch what the socket missed: messages of open chats, the queue, the lists.
    for (const chat of state.chats.values()) syncChat(chat);
    refreshQueue();
    refreshUncoded();
    refreshAlerts();
    loadPresence();
    if (supervisor()) { refreshAllChats(); refreshEscalations(); }
  }
  if (kind === "unauthorized") {
    try { sessionStorage.removeItem(STORE); } catch (error) { /* nothing */ }
  }
}

function onEvent(name, data) {
  const chat = data.chat_id ? state.chats.get(data.chat_id) : null;
  switch (name) {
    case "queue.changed":
      // The push carries the first entries and counts; past those, the full
      // list comes from GET /api/v1/queue (at most every few seconds).
      state.queue = data.waiting || [];
      state.queueCount = data.waiting_count ?? state.queue.length;
      state.available = data.available_counsellors;
      renderQueue();
      if (data.truncated) refreshQueueSoon();
      break;
    case "queue.flood":
      state.flood = data.active ? data : null;
      renderQueue();
      break;
    case "chat.message":
      if (chat) addMessage(chat, data, true);
      break;
    case "chat.typing":
      if (chat && data.sender === "child") showTyping(chat);
      break;
    case "chat.assigned":
      if (data.counsellor?.id === state.me.id && !state.chats.has(data.chat_id)) openChat(data.chat_id);
      else if (chat && chat.watch === false && data.counsellor?.id && data.counsellor.id !== state.me.id) {
        chat.counsellor = data.counsellor;
        chat.watch = true;
        renderCard(chat);
      }
      if (supervisor()) refreshAllChats();
      break;
    case "chat.ended":
      if (chat) {
        chat.status = data.status || "ended";
        chat.endedBy = data.ended_by;
        hideTyping(chat);
        renderCard(chat);
        syncChat(chat);
      }
      if (supervisor()) refreshAllChats();
      renderPresence();
      break;
    case "coding.required":
      refreshUncoded();
      codingReminder(data);
      break;
    case "coding.overdue":
      if (supervisor()) {
        state.overdue.set(data.chat_id, data);
        renderOverdue();
      }
      break;
    case "escalation.alert":
      raiseAlert(data);
      if (chat && !data.repeat && !chat.flags.some((f) => f.seq === data.seq && f.reason === data.reason)) {
        chat.flags.push(data);
        renderCard(chat);
      }
      break;
    case "escalation.alert_acked":
      clearAlerts(data.chat_id, data.alert_ids || [], data.acked_by);
      break;
    case "escalation.raised":
    case "escalation.updated":
      if (supervisor()) refreshEscalations();
      if (chat) loadChatEscalations(chat);
      if (detail.id === data.escalation_id && $("detail-dialog").open && name === "escalation.updated"
        && !detail.busy && detail.view?.status !== data.status) showEscalation(data.escalation_id, `Endret av en annen: ${ESC_STATUS[data.status] || data.status}.`);
      break;
    case "queue.offer":
      state.offers.set(data.chat_id, data);
      renderOffers();
      beep(Boolean(data.risk));
      break;
    case "queue.offer_withdrawn":
      if (state.offers.delete(data.chat_id)) renderOffers(WITHDRAWN[data.why] || "Tilbudet ble trukket.");
      break;
    case "counsellor.cooldown":
      if (data.counsellor_id === state.me.id) {
        state.presence = { ...(state.presence || {}), cooldown_until: data.until,
          cooldown_opt_in: data.state === "opted_in" };
        save();
        renderPresence();
      } else if (supervisor()) {
        noteColleague(data);
      }
      break;
    default:
      break;
  }
}

// -- alerts: stay until acknowledged, say it out loud, flash the title -----------
// One banner per alert (a repeat refreshes it); acknowledging tells the server,
// which tells every console (escalation.alert_acked) so nobody chases it twice.
function raiseAlert(data) {
  const key = data.alert_id || `local-${data.escalation_id || data.chat_id}`;
  const known = state.chats.get(data.chat_id);
  const label = known ? who(known.gender, known.age) : `chat ${short(data.chat_id)}`;
  const severe = data.severity === "high" || data.kind === "acute_danger";
  const old = $("alerts").querySelector(`[data-alert="${CSS.escape(key)}"]`);
  const card = h("div", { class: `alert ${severe ? "high" : "medium"}${data.raised ? " raised" : ""}`, role: "alert",
    "data-alert": key, "data-chat-id": data.chat_id },
    h("strong", {}, `${severe ? "⚠ AKUTT" : "⚠ Risiko"}: ${KIND[data.kind] || data.kind}${data.category && data.kind !== "acute_danger" ? ` – ${data.category_words || data.category}` : ""}`),
    h("span", {}, ` ${label}. ${data.reason || ""}`),
    data.repeat ? h("span", { class: "pill repeat" }, `Ikke kvittert – varslet ${data.repeat + 1}. gang`) : null,
    data.raised ? h("span", { class: "pill raised" }, "Løftet til alle vakthavende") : null,
    h("span", { class: "alert-time" }, clock(data.detected_at || new Date().toISOString())),
    h("button", { type: "button", class: "primary", onclick: () => { focusOrOpen(data.chat_id); } }, "Åpne samtalen"),
    h("button", { type: "button", class: "ghost", onclick: () => acknowledge(card, data) }, "Kvitter"),
    h("span", { class: "alert-error small", role: "status" }));
  if (old) old.replaceWith(card); else $("alerts").prepend(card);
  updateTitle();
  beep(severe || data.raised);
}
async function acknowledge(card, data) {
  if (data.local || !data.alert_id) { card.remove(); updateTitle(); return; }
  const result = await call("POST", `/api/v1/alerts/${data.chat_id}/ack`, { alert_id: data.alert_id });
  if (result.ok || result.status === 404 && !missing(result)) {
    card.remove();
    updateTitle();
  } else {
    card.querySelector(".alert-error").textContent = `Ikke kvittert: ${problem(result)}`;
  }
}
function clearAlerts(chatId, alertIds, ackedBy) {
  for (const card of [...$("alerts").querySelectorAll(".alert")]) {
    if (alertIds.includes(card.dataset.alert)) card.remove();
  }
  updateTitle();
}
async function refreshAlerts() {
  const result = await call("GET", "/api/v1/alerts");
  if (!result.ok) return;
  const open = new Set();
  for (const alert of result.data.alerts || []) {
    open.add(alert.alert_id);
    const shown = $("alerts").querySelector(`[data-alert="${CSS.escape(alert.alert_id)}"]`);
    if (!shown) raiseAlert(alert);
  }
  for (const card of [...$("alerts").querySelectorAll(".alert")]) {
    if (!card.dataset.alert.startsWith("local-") && !open.has(card.dataset.alert)) card.remove();
  }
  updateTitle();
}
function updateTitle() {
  const count = $("alerts").children.length;
  document.title = count ? `(${count}) VARSEL – chatvakt` : "chatvakt – konsoll";
}
let audio = null;
function beep(severe) {
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

// -- offers (auto-assign): a chat offered to me for a short while --------------------
function renderOffers(note) {
  const list = $("offers");
  list.replaceChildren(...[...state.offers.values()].map((offer) => h("li", { class: `offer ${offer.risk ? "risk" : ""}`, "data-chat-id": offer.chat_id },
    h("strong", {}, `Tilbud: ${who(offer.gender, offer.age)}`),
    offer.risk ? h("span", { class: "pill risk" }, "Risiko") : null,
    offer.reason ? h("p", { class: "q-reason small" }, offer.reason) : null,
    h("div", { class: "row" },
      h("span", { class: "small", "data-expires": offer.expires_at }),
      h("button", { type: "button", class: "primary small-btn", onclick: () => answerOffer(offer, true) }, "Ta samtalen"),
      h("button", { type: "button", class: "ghost small-btn", onclick: () => answerOffer(offer, false) }, "Avslå")))));
  if (note) list.append(h("li", { class: "muted small offer-note" }, note));
  tick();
}
async function answerOffer(offer, accept) {
  const result = await call("POST", `/api/v1/queue/offers/${offer.chat_id}/${accept ? "accept" : "decline"}`, {});
  state.offers.delete(offer.chat_id);
  if (!result.ok) {
    renderOffers(result.status === 404 ? "Tilbudet gjelder ikke lenger." : problem(result));
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
function codingReminder(data) {
  if (!data.reminder && !data.overdue) return;
  const box = $("coding-reminder");
  const count = data.uncoded ?? Number($("uncoded-count").textContent);
  box.textContent = `${data.overdue ? "Siste påminnelse" : "Påminnelse"}: ${count} ${count === 1 ? "samtale er" : "samtaler er"} ikke kodet.${data.overdue ? " Vakthavende får beskjed." : ""}`;
  box.classList.toggle("overdue", Boolean(data.overdue));
  box.hidden = false;
}
function renderOverdue() {
  const items = [...state.overdue.values()];
  $("overdue-count").textContent = items.length;
  $("overdue-count").classList.toggle("warn", items.length > 0);
  $("overdue").replaceChildren(...items.map((item) => h("li", {},
    h("span", {}, `chat ${short(item.chat_id)} · ${state.colleagues.get(item.counsellor_id)?.name || short(item.counsellor_id) || "ukjent"}${item.uncoded ? ` · ${item.uncoded} ukodet` : ""}`),
    h("button", { type: "button", class: "ghost small-btn", onclick: () => { state.overdue.delete(item.chat_id); renderOverdue(); } }, "Fulgt opp"))));
  if (!items.length) $("overdue").append(h("li", { class: "muted" }, "Ingen."));
}
async function loadColleagues() {
  const result = await call("GET", "/api/v1/counsellors");
  if (!result.ok) return [];
  const people = result.data.counsellors || [];
  for (const person of people) state.colleagues.set(person.id, person);
  return people;
}
function noteColleague(data) {
  const person = data.counsellor_name || state.colleagues.get(data.counsellor_id)?.name || short(data.counsellor_id);
  $("queue-info").dataset.note = data.state === "started" ? `${person} har pause til ${clock(data.until)}.` : `${person} er klar igjen.`;
  renderQueue();
}

// -- queue --------------------------------------------------------------------
async function refreshQueue() {
  const result = await call("GET", "/api/v1/queue");
  if (result.ok) {
    state.queue = result.data.waiting || [];
    state.queueCount = state.queue.length;
    state.available = result.data.available_counsellors;
    if ("flood" in result.data) state.flood = result.data.flood;
    renderQueue();
  }
}
let queueRefreshTimer = null;
function refreshQueueSoon() {
  if (queueRefreshTimer) return;
  queueRefreshTimer = setTimeout(() => { queueRefreshTimer = null; refreshQueue(); }, 3000);
}
function floodNote() {
  const f = state.flood;
  if (!f) return "";
  return ` · Mulig flom: ${f.suspect_waiting} mistenkelige samtaler fra ${f.sources} ${f.sources === 1 ? "kilde" : "kilder"} siden ${clock(f.since)} (betjenes sist)`;
}
function renderQueue() {
  $("queue-count").textContent = state.queueCount ?? state.queue.length;
  $("queue-info").textContent = `${state.available ?? "–"} ${state.available === 1 ? "tilgjengelig veileder" : "tilgjengelige veiledere"}${$("queue-info").dataset.note ? ` · ${$("queue-info").dataset.note}` : ""}${floodNote()}`;
  $("queue").replaceChildren(...state.queue.map((entry, index) => h("li", { class: `q ${entry.risk ? "risk" : ""}`, "data-chat-id": entry.chat_id },
    h("div", { class: "q-main" },
      h("strong", {}, `${index + 1}. ${who(entry.gender, entry.age)}`),
      entry.risk ? h("span", { class: "pill risk" }, "Risiko") : null,
      entry.priority_source === "self_report" ? h("span", { class: "pill warn" }, SELF_REPORT_LABEL) : null,
      entry.priority ? h("span", { class: "pill" }, `prioritet ${entry.priority}`) : null),
    entry.reason ? h("p", { class: "q-reason small" }, entry.reason) : null,
    h("div", { class: "q-foot small" },
      h("span", {}, "Venter "), h("span", { "data-since": entry.waiting_since }, since(entry.waiting_since)),
      riskMarkButton(entry.chat_id, entry.risk, who(entry.gender, entry.age)),
      h("button", { type: "button", class: "ghost small-btn", onclick: () => take(entry.chat_id),
        "aria-label": `Ta ${who(entry.gender, entry.age)}` }, "Ta")))));
}
// -- issue 14: the child's own "I am in danger now", and marking risk by hand ---
// Self-contained on purpose (the console is being split into modules): one
// label, one button on a queue row and on a chat card, one call. The reason
// goes sealed to the escalation service as a labelled example for retraining.
const SELF_REPORT_LABEL = "Sier selv at hen er i fare nå";
const RISK_MARK_LABEL = { on: "Marker: i fare", off: "Marker: ikke i fare" };
function riskMarkButton(chatId, risky, label, chat = null) {
  return h("button", { type: "button", class: "ghost small-btn act-risk",
    "aria-label": `${risky ? RISK_MARK_LABEL.off : RISK_MARK_LABEL.on}: ${label}`,
    onclick: () => markRisk(chatId, chat ? !chat.flags.length : !risky, chat) },
  risky ? RISK_MARK_LABEL.off : RISK_MARK_LABEL.on);
}
async function markRisk(chatId, atRisk, chat) {
  const reason = window.prompt(atRisk ? "Hvorfor er barnet i fare? (kort begrunnelse)"
    : "Hvorfor er barnet ikke i fare? (kort begrunnelse)");
  if (!reason || !reason.trim()) return;
  const result = await call("POST", `/api/v1/chats/${chatId}/risk`, { at_risk: atRisk, reason: reason.trim() });
  if (!result.ok) {
    $("queue-error").textContent = problem(result);
    $("queue-error").hidden = false;
    return;
  }
  if (chat) {
    chat.flags = atRisk ? [...chat.flags, { kind: "risk", reason: "Markert i fare for hånd" }] : [];
    renderCard(chat);
  }
  refreshQueue();
}

async function take(chatId) {
  $("queue-error").hidden = true;
  const result = await call("POST", "/api/v1/queue/take", chatId ? { chat_id: chatId } : {});
  if (result.status === 204) {
    $("queue-error").textContent = "Ingen venter i køen.";
    $("queue-error").hidden = false;
  } else if (!result.ok) {
    $("queue-error").textContent = result.status === 409 ? `Kan ikke ta samtalen: ${result.data?.error?.message || "du har nådd kapasiteten din, har pause eller er ikke tilgjengelig."}` : problem(result);
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

// -- the lists: mine, uncoded, all (supervisor), escalations -----------------------
async function loadActive(openIds) {
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
async function refreshAllChats() {
  if (!state.features.list) return;
  const result = await call("GET", "/api/v1/chats?status=active");
  if (missing(result)) { state.features.list = false; $("all-missing").hidden = false; return; }
  if (result.ok) renderAllChats(result.data.chats || []);
}
function renderAllChats(chats) {
  $("all-chats").replaceChildren(...chats.map((chat) => h("li", {},
    h("span", {}, `${who(chat.gender, chat.age)} · ${chat.counsellor?.name || "ingen"} · ${PHASES.find((p) => p.code === chat.phase)?.label || ""}`),
    chat.risk ? h("span", { class: "pill risk", title: chat.reason || "" }, chat.acute_danger ? "Akutt fare" : "Risiko") : null,
    h("button", { type: "button", class: "ghost small-btn", onclick: () => focusOrOpen(chat.chat_id) },
      chat.counsellor?.id === state.me.id ? "Åpne" : "Se og hvisk"))));
  if (!chats.length) $("all-chats").append(h("li", { class: "muted" }, "Ingen aktive samtaler."));
}
async function refreshUncoded() {
  const result = await call("GET", "/api/v1/coding/uncoded");
  if (!result.ok) return;
  const chats = result.data.chats || [];
  $("uncoded-count").textContent = chats.length;
  $("uncoded-count").classList.toggle("warn", chats.length > 0);
  $("uncoded").replaceChildren(...chats.map((chat) => h("li", {},
    h("span", {}, `${dateTime(chat.started_at)} · ${short(chat.chat_id)}`),
    h("button", { type: "button", class: "ghost small-btn", onclick: () => openCoding(chat.chat_id) }, "Kode"))));
  if (!chats.length) $("uncoded").append(h("li", { class: "muted" }, "Alt er kodet."));
}
function renderMine() {
  const mine = [...state.chats.values()];
  $("mine").replaceChildren(...mine.map((chat) => h("li", {},
    h("span", {}, `${who(chat.gender, chat.age)}${chat.watch ? " (ser på)" : ""}`),
    chat.unread ? h("span", { class: "pill unread" }, `${chat.unread} nye`) : null,
    h("button", { type: "button", class: "ghost small-btn", onclick: () => focusOrOpen(chat.id) }, "Vis"))));
  if (!mine.length) $("mine").append(h("li", { class: "muted" }, "Ingen."));
  $("no-chats").hidden = mine.length > 0;
  renderPresence();
}
// Once a second: wait times and deadlines.
function tick() {
  for (const node of document.querySelectorAll("[data-since]")) node.textContent = since(node.dataset.since);
  for (const node of document.querySelectorAll("[data-deadline]")) {
    const left = new Date(node.dataset.deadline).getTime() - Date.now();
    const minutes = Math.round(Math.abs(left) / 60000);
    const text = minutes >= 2880 ? `${Math.round(minutes / 1440)} døgn` : minutes >= 120 ? `${Math.round(minutes / 60)} t` : `${minutes} min`;
    node.textContent = left < 0 ? `Frist passert for ${text} siden` : `Frist om ${text} (${dateTime(node.dataset.deadline)})`;
    node.classList.toggle("overdue", left < 0);
  }
  for (const node of document.querySelectorAll("[data-expires]")) {
    const left = Math.max(0, Math.round((new Date(node.dataset.expires).getTime() - Date.now()) / 1000));
    node.textContent = `svar innen ${left} s`;
  }
}

// -- chat cards ------------------------------------------------------------------
async function focusOrOpen(chatId) {
  const chat = state.chats.get(chatId) || await openChat(chatId);
  if (chat) {
    showView("work");
    chat.card.scrollIntoView({ block: "nearest" });
    chat.card.querySelector("textarea").focus();
  }
}

// One card per chat, however many events and clicks ask for it at once.
const opening = new Map();
function openChat(chatId, extra = {}) {
  if (state.chats.has(chatId)) return Promise.resolve(state.chats.get(chatId));
  if (!opening.has(chatId)) {
    opening.set(chatId, buildChat(chatId, extra).finally(() => opening.delete(chatId)));
  }
  return opening.get(chatId);
}

async function buildChat(chatId, extra) {
  const result = await call("GET", `/api/v1/chats/${chatId}`);
  if (!result.ok) return null;
  const info = result.data;
  const chat = {
    id: chatId, status: info.status, gender: info.gender, age: info.age, phase: info.phase || "opening",
    counsellor: info.counsellor, lastSeq: 0, unread: 0, seen: new Set(), flags: [], escalations: [],
    watch: Boolean(info.counsellor?.id && info.counsellor.id !== state.me.id),
    mode: "child", typingAt: 0,
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

function buildCard(chat) {
  const card = $("chat-template").content.firstElementChild.cloneNode(true);
  card.id = `chat-${chat.id}`;
  card.dataset.chatId = chat.id;
  const textarea = card.querySelector("textarea");
  textarea.id = `text-${chat.id}`;
  card.querySelector(".compose-row label").htmlFor = textarea.id;
  card.querySelector(".close-card").addEventListener("click", () => closeCard(chat));
  card.addEventListener("focusin", () => markRead(chat));
  card.addEventListener("pointerdown", () => markRead(chat));
  // phases
  const phases = card.querySelector(".phases");
  PHASES.forEach((phase, index) => {
    phases.append(h("li", {}, h("button", { type: "button", class: "phase", "data-phase": phase.code,
      onclick: () => setPhase(chat, phase.code) }, `${index + 1}. ${phase.label}`)));
  });
  // modes: to the child, internal note, whisper (supervisor)
  const modes = card.querySelector(".modes");
  const options = [["child", "Til barnet"], ["note", "Internt notat"]];
  if (supervisor()) options.push(["whisper", "Hvisk til chatverten"]);
  for (const [value, label] of options) {
    modes.append(h("label", {}, h("input", { type: "radio", name: `mode-${chat.id}`, value,
      onchange: () => { chat.mode = value; renderCard(chat); } }), ` ${label}`));
  }
  // phrases
  const select = card.querySelector(".phrases");
  select.append(h("option", { value: "" }, "– velg –"));
  PHRASES.forEach(([label, text], index) => select.append(h("option", { value: index }, `${label}: ${fill(text)}`)));
  select.addEventListener("change", () => {
    if (select.value === "") return;
    const text = fill(PHRASES[Number(select.value)][1]);
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

// The console's language for the server's messages (the page's lang; nb until it speaks more).
function consoleLang() {
  return (document.documentElement.lang || "nb").toLowerCase().startsWith("en") ? "en" : "nb";
}

function fill(text) {
  return text.replace("{first}", (state.me?.name || "").split(/\s+/)[0]);
}

function renderCard(chat) {
  const card = chat.card;
  if (chat.watch && chat.mode === "child" && supervisor()) chat.mode = "whisper";
  card.classList.toggle("watching", chat.watch);
  card.classList.toggle("ended", chat.status !== "active" && chat.status !== "waiting");
  card.querySelector(".chat-title").textContent =
    `${who(chat.gender, chat.age)}${chat.watch ? ` – ${chat.counsellor?.name || ""}` : ""}`;
  const stateText = { active: "aktiv", waiting: "venter", ended: "avsluttet", abandoned: "forlatt",
    timed_out: "avsluttet (stille lenge)" }[chat.status] || chat.status;
  card.querySelector(".state").textContent = chat.endedBy === "quick_exit" ? "avsluttet (rask utgang)" : stateText;
  const unread = card.querySelector(".unread");
  unread.hidden = !chat.unread;
  unread.textContent = `${chat.unread} nye`;
  const risky = chat.flags.length > 0;
  const risk = card.querySelector(".risk");
  risk.hidden = !risky;
  risk.textContent = "Risiko";
  const flags = card.querySelector(".flags");
  flags.hidden = !risky;
  flags.textContent = risky ? `Flagg: ${[...new Set(chat.flags.map((f) => f.reason || f.category_words || f.category))].join("; ")}` : "";
  markFlagged(chat);
  const index = PHASES.findIndex((p) => p.code === chat.phase);
  for (const button of card.querySelectorAll(".phase")) {
    const at = PHASES.findIndex((p) => p.code === button.dataset.phase);
    button.classList.toggle("done", at < index);
    if (at === index) button.setAttribute("aria-current", "step"); else button.removeAttribute("aria-current");
    button.disabled = !state.features.phase || chat.status !== "active";
  }
  card.querySelector(".phase-hint").textContent = `${PHASES[Math.max(0, index)].hint} ${ALWAYS}`;
  for (const input of card.querySelectorAll(".modes input")) {
    input.checked = input.value === chat.mode;
    const disabled = (input.value === "note" && !state.features.notes) ||
      (input.value === "whisper" && !state.features.whisper) || (input.value === "child" && chat.watch && !supervisor());
    input.disabled = disabled;
    input.parentElement.hidden = disabled;
  }
  const open = chat.status === "active" || chat.status === "waiting";
  card.querySelector(".composer").hidden = !open && chat.mode === "child";
  card.querySelector(".send").textContent = chat.mode === "note" ? "Lagre notat" : chat.mode === "whisper" ? "Hvisk" : "Send";
  card.querySelector("textarea").placeholder = chat.mode === "note" ? "Internt notat – barnet ser det ikke"
    : chat.mode === "whisper" ? "Bare chatverten ser dette" : "Skriv til barnet …";
  card.querySelector(".act-risk").textContent = risky ? RISK_MARK_LABEL.off : RISK_MARK_LABEL.on;
  card.querySelector(".act-end").hidden = !open;
  card.querySelector(".act-transfer").hidden = !open || chat.watch;
  renderMine();
}

async function syncChat(chat) {
  const info = await call("GET", `/api/v1/chats/${chat.id}`);
  if (info.ok) {
    Object.assign(chat, { status: info.data.status, phase: info.data.phase || chat.phase,
      gender: info.data.gender, age: info.data.age, counsellor: info.data.counsellor,
      endedBy: info.data.ended_by || chat.endedBy });
    chat.watch = Boolean(chat.counsellor?.id && chat.counsellor.id !== state.me.id);
  }
  const result = await call("GET", `/api/v1/chats/${chat.id}/messages?after=${chat.lastSeq}`);
  if (result.ok) for (const message of result.data.messages) addMessage(chat, message, false);
  renderCard(chat);
}

// issue 13: the child's message that a flag came from (by seq), marked in the transcript.
function markFlagged(chat) {
  for (const flag of chat.flags) {
    const li = flag.seq != null && chat.card.querySelector(`.log li[data-seq="${flag.seq}"]`);
    if (!li || li.classList.contains("flagged")) continue;
    li.classList.add("flagged");
    li.prepend(h("span", { class: "flag-mark" }, "⚑ Flagget av risikoskjermen"));
  }
}

function addMessage(chat, message, live) {
  if (chat.seen.has(message.seq)) return;
  chat.seen.add(message.seq);
  chat.lastSeq = Math.max(chat.lastSeq, message.seq);
  const internal = message.visibility && message.visibility !== "all";
  const kind = message.kind === "whisper" || message.visibility === "counsellor" ? "whisper" : internal ? "note" : message.sender;
  const label = kind === "whisper" ? "Hvisking fra vakthavende" : kind === "note" ? "Internt notat"
    : message.sender === "child" ? who(chat.gender, chat.age) : message.sender === "counsellor" ? "Chatvert" : "";
  const li = h("li", { class: `msg ${message.sender} ${internal ? `internal ${kind}` : ""}`, "data-seq": message.seq },
    label ? h("span", { class: "who" }, label) : null,
    h("p", { class: "text" }, message.text),
    h("span", { class: "meta" }, h("time", { datetime: message.sent_at }, clock(message.sent_at))));
  const log = chat.card.querySelector(".log");
  const after = [...log.children].find((node) => Number(node.dataset.seq) > message.seq);
  if (after) log.insertBefore(li, after); else log.append(li);
  log.scrollTop = log.scrollHeight;
  if (message.sender === "child") {
    hideTyping(chat);
    if (live && (state.focused !== chat.id || document.hidden)) {
      chat.unread += 1;
      renderCard(chat);
    }
  }
}

function markRead(chat) {
  state.focused = chat.id;
  if (chat.unread) {
    chat.unread = 0;
    renderCard(chat);
  }
}

function showTyping(chat) {
  chat.card.querySelector(".typing").textContent = `${who(chat.gender, chat.age)} skriver …`;
  clearTimeout(chat.typingTimer);
  chat.typingTimer = setTimeout(() => hideTyping(chat), TYPING_SHOWN_MS);
}
function hideTyping(chat) {
  clearTimeout(chat.typingTimer);
  chat.card.querySelector(".typing").textContent = "";
}

function typed(chat) {
  const now = Date.now();
  if (chat.mode !== "child" || chat.status !== "active" || now - chat.typingAt < TYPING_EVERY_MS) return;
  chat.typingAt = now;
  if (state.live?.ready()) state.live.call("typing", { chat_id: chat.id });
}

async function sendFrom(chat) {
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

async function setPhase(chat, phase) {
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

async function endChat(chat) {
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

function closeCard(chat) {
  if (chat.status === "active" && !chat.watch && !confirm("Samtalen er fortsatt aktiv. Lukke kortet likevel? Du finner den under «Mine samtaler» etter omlasting.")) return;
  chat.card.remove();
  state.chats.delete(chat.id);
  renderMine();
  save();
}

// -- coding -------------------------------------------------------------------------
const coding = { chatId: null, chosen: [] };

function labelOf(code) {
  for (const main of state.taxonomy?.categories || []) {
    if (main.code === code) return main.label;
    const sub = main.subcategories.find((s) => s.code === code);
    if (sub) return `${main.label} › ${sub.label}`;
  }
  return code;
}
const parentOf = (code) => (code.includes(".") ? code.split(".")[0] : null);

function toLocalInput(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}
function fromLocalInput(value) {
  return value ? new Date(value).toISOString() : null;
}

async function openCoding(chatId) {
  const result = await call("GET", `/api/v1/chats/${chatId}/coding?lang=${consoleLang()}`);
  if (!result.ok) { alert(problem(result)); return; }
  const data = result.data;
  coding.chatId = chatId;
  coding.chosen = [...(data.categories || [])];
  $("coding-sub").textContent = `Chat ${short(chatId)} · ${data.coded ? "kodet tidligere – du endrer kodingen" : "ikke kodet ennå"}`;
  $("c-gender").value = data.gender || "unspecified";
  $("c-age").value = data.age ?? "";
  $("c-in").value = toLocalInput(data.time_in);
  $("c-out").value = toLocalInput(data.time_out);
  $("c-contact").value = data.contact_type || "child_about_self";
  $("c-name").textContent = data.counsellor?.name || state.me.name;
  $("c-assessed").checked = Boolean(data.acute_danger_assessed);
  // issue 13: filled from the chat's escalations and risk flags; with no answer yet neither is chosen
  for (const input of document.querySelectorAll('input[name="c-danger"]')) {
    input.checked = data.acute_danger != null && input.value === (data.acute_danger ? "yes" : "no");
  }
  $("c-notes").value = data.notes || "";
  $("c-filter").value = "";
  $("coding-error").hidden = true;
  for (const node of document.querySelectorAll("#coding-form [data-field]")) node.textContent = "";
  buildTree();
  renderChosen();
  loadHistory(chatId);
  $("coding-dialog").showModal();
}

async function loadHistory(chatId) {
  const box = $("c-history");
  box.hidden = true;
  if (!state.features.history) return;
  const result = await call("GET", `/api/v1/chats/${chatId}/coding/history`);
  if (missing(result)) { state.features.history = false; return; }
  const versions = result.ok ? (result.data.history || []) : [];
  if (!versions.length) return;
  const labels = {};
  for (const version of new Set(versions.map((v) => v.taxonomy_version).filter(Boolean))) {
    labels[version] = await taxonomyLabels(version);
  }
  box.querySelector("summary").textContent = `Tidligere versjoner (${versions.length})`;
  box.querySelector("ol").replaceChildren(...versions.slice().reverse().map((v) => {
    const names = labels[v.taxonomy_version] || {};
    const coding = v.coding || {};
    return h("li", { class: "version" },
      h("strong", {}, `Versjon ${v.version}${v.correction ? " (rettelse)" : ""}`),
      ` · ${dateTime(v.changed_at || v.coded_at)} · ${v.changed_by_name || v.coded_by?.name || short(v.changed_by)}`,
      v.taxonomy_version && v.taxonomy_version !== state.taxonomy?.version ? h("span", { class: "pill" }, `kategorier ${v.taxonomy_version}`) : null,
      h("div", {}, `Kategorier: ${(v.categories || coding.categories || []).map((c) => names[c] || labelOf(c)).join(", ") || "–"}`),
      h("div", { class: "muted" }, `${GENDER[coding.gender] || coding.gender || "–"} ${coding.age ?? ""} · akutt fare ${coding.acute_danger ? "ja" : "nei"}${v.changed_fields?.length ? ` · endret: ${v.changed_fields.join(", ")}` : ""}`));
  }));
  box.hidden = false;
}
const taxonomies = {};
async function taxonomyLabels(version) {
  if (taxonomies[version]) return taxonomies[version];
  let doc = state.taxonomy?.version === version ? state.taxonomy : null;
  if (!doc) {
    const result = await call("GET", `/api/v1/taxonomy?lang=nb&version=${encodeURIComponent(version)}`);
    doc = result.ok ? result.data : { categories: [] };
  }
  const names = {};
  for (const main of doc.categories || []) {
    names[main.code] = main.label;
    for (const sub of main.subcategories || []) names[sub.code] = `${main.label} › ${sub.label}`;
  }
  taxonomies[version] = names;
  return names;
}

function buildTree() {
  const tree = $("c-tree");
  const filter = $("c-filter").value.trim().toLowerCase();
  tree.replaceChildren();
  for (const main of state.taxonomy?.categories || []) {
    const subs = main.subcategories.filter((s) => !filter || s.label.toLowerCase().includes(filter) ||
      main.label.toLowerCase().includes(filter) || (s.label_en || "").toLowerCase().includes(filter));
    if (filter && !subs.length) continue;
    const chosenHere = coding.chosen.some((c) => c === main.code || parentOf(c) === main.code);
    const group = h("details", { class: "group", open: Boolean(filter) || chosenHere },
      h("summary", {}, main.label, chosenHere ? h("span", { class: "pill" }, "valgt") : null));
    const list = h("div", { class: "subs" });
    for (const sub of subs) list.append(checkbox(sub.code, sub.label));
    list.append(checkbox(main.code, `Bare hovedkategori: ${main.label} (kun når ingen underkategori passer)`, "main-only"));
    const warn = h("p", { class: "rule-warn small", role: "alert", hidden: true });
    group.append(list, warn);
    tree.append(group);
  }
  checkRule();
}

function checkbox(code, label, extra = "") {
  const id = `cat-${code.replace(/\W/g, "_")}`;
  return h("label", { class: `cat ${extra}`, for: id },
    h("input", { type: "checkbox", id, value: code, checked: coding.chosen.includes(code),
      onchange: (event) => {
        if (event.target.checked) { if (!coding.chosen.includes(code)) coding.chosen.push(code); } else coding.chosen = coding.chosen.filter((c) => c !== code);
        renderChosen();
        checkRule();
      } }), ` ${label}`);
}

// The rule where it bites: a main category together with one of its own subcategories.
function checkRule() {
  let broken = false;
  for (const group of $("c-tree").querySelectorAll("details")) {
    const mainBox = group.querySelector(".main-only input");
    const main = mainBox?.value;
    const subs = coding.chosen.filter((c) => parentOf(c) === main);
    const warn = group.querySelector(".rule-warn");
    const bites = coding.chosen.includes(main) && subs.length > 0;
    warn.hidden = !bites;
    warn.textContent = bites ? `Du har valgt både hovedkategorien og underkategorien «${labelOf(subs[0]).split(" › ")[1]}». Underkategori er primærkategori – fjern hovedkategorien. Hovedkategori brukes kun når ingen underkategori passer.` : "";
    broken = broken || bites;
  }
  $("coding-save").dataset.rule = broken ? "broken" : "";
}

function renderChosen() {
  const list = $("c-chosen");
  list.replaceChildren(...coding.chosen.map((code, index) => h("li", {},
    h("span", {}, `${index === 0 ? "Primær: " : ""}${labelOf(code)}`),
    index > 0 ? h("button", { type: "button", class: "ghost small-btn", onclick: () => {
      coding.chosen = [code, ...coding.chosen.filter((c) => c !== code)];
      renderChosen();
    } }, "Gjør primær") : null,
    h("button", { type: "button", class: "ghost small-btn", "aria-label": `Fjern ${labelOf(code)}`, onclick: () => {
      coding.chosen = coding.chosen.filter((c) => c !== code);
      buildTree();
      renderChosen();
    } }, "Fjern"))));
  if (!coding.chosen.length) list.append(h("li", { class: "muted" }, "Ingen kategori valgt ennå."));
}

async function saveCoding(event) {
  event.preventDefault();
  for (const node of document.querySelectorAll("#coding-form [data-field]")) node.textContent = "";
  const age = $("c-age").value;
  const body = {
    gender: $("c-gender").value,
    age: age === "" ? null : Number(age),
    categories: coding.chosen,
    acute_danger_assessed: $("c-assessed").checked,
    acute_danger: { yes: true, no: false }[document.querySelector('input[name="c-danger"]:checked')?.value] ?? null,
    contact_type: $("c-contact").value,
    time_in: fromLocalInput($("c-in").value),
    time_out: fromLocalInput($("c-out").value),
    notes: $("c-notes").value.trim() || null,
  };
  const result = await call("PUT", `/api/v1/chats/${coding.chatId}/coding?lang=${consoleLang()}`, body);
  if (!result.ok) {
    const fields = result.data?.error?.fields || {};
    for (const [field, messages] of Object.entries(fields)) {
      const node = document.querySelector(`#coding-form [data-field="${field}"]`);
      if (node) node.textContent = messages.join(" ");
    }
    $("coding-error").textContent = result.status === 422 ? "Kodingen er ikke gyldig – se merknadene over." : problem(result);
    $("coding-error").hidden = false;
    return;
  }
  $("coding-dialog").close();
  refreshUncoded();
  const chat = state.chats.get(coding.chatId);
  if (chat && chat.status !== "active") {
    chat.card.classList.add("coded");
    chat.card.querySelector(".act-code").textContent = "Kodet ✓";
  }
}

// -- escalations ----------------------------------------------------------------------
// One description of each kind's details (services/escalation/domain.py) drives
// both the form that raises an escalation and the one that works it to its end.
// id: where the value lives in `details` ("person.name" is details.person.name).
const CONTACTS = [["parent", "Forelder / foresatt"], ["school", "Skole / lærer"], ["school_nurse", "Helsesykepleier"],
  ["doctor", "Lege"], ["police", "Politi"], ["other", "Annen"]];
const FIELDS = {
  acute_danger: [
    { id: "situation", label: "Hva skjer? (kort)", type: "textarea", wide: true },
    { id: "location", label: "Hvor er barnet? (om barnet vil si det)", identifying: true },
    { id: "emergency_number", label: "Nødetat kontaktet", type: "select", options: [["", "– ikke ennå –"],
      ["112", "Politi 112"], ["113", "Ambulanse 113"], ["110", "Brann 110"], ["116 117", "Legevakt 116 117"],
      ["02800", "Politiet 02800"]] },
    { id: "called_at", label: "Ringt (tidspunkt)", type: "datetime", later: true },
    { id: "called_by", label: "Ringt av", later: true },
    { id: "outcome", label: "Utfall", type: "textarea", wide: true, later: true },
    { id: "note", label: "Merknad", type: "textarea", wide: true },
  ],
  report_of_concern: [
    { id: "person.name", label: "Barnets navn (om kjent)", identifying: true },
    { id: "person.school", label: "Skole / barnehage", identifying: true },
    { id: "person.address", label: "Adresse / sted", identifying: true },
    { id: "person.guardians", label: "Foresatte", identifying: true },
    { id: "child.gender", label: "Kjønn", type: "select", options: [["", "– ikke oppgitt –"], ["girl", "Jente"],
      ["boy", "Gutt"], ["other", "Annet"], ["unspecified", "Ukjent"]] },
    { id: "child.age", label: "Alder", type: "number", min: 0, max: 25 },
    { id: "cause", label: "Hva er det konkret som gir bekymring?", type: "textarea", wide: true, required: "approved" },
    { id: "examples", label: "Eksempler (ett per linje)", type: "lines", wide: true },
    { id: "observed", label: "Når ble det observert / fortalt?", required: "approved" },
    { id: "duration", label: "Én gang eller over tid?", type: "select", required: "approved",
      options: [["", "– velg –"], ["once", "Én gang"], ["over_time", "Over tid"], ["unknown", "Vet ikke"]] },
    { id: "concerns", label: "Andre det gjelder (søsken o.l.)" },
    { id: "others_who_know", label: "Hvem andre kan vite noe?" },
    { id: "recipient", label: "Til barneverntjenesten i (kommune)" },
    { id: "reporter.name", label: "Melder (navn)" },
    { id: "reporter.anonymous", label: "Meldes anonymt", type: "checkbox" },
    { id: "sent_via", label: "Sendt via", type: "select", tracking: true, later: true, options: [["", "– velg –"],
      ["digital", "Digitalt"], ["email", "E-post"], ["post", "Post"], ["phone", "Telefon"], ["other", "Annet"]] },
    { id: "reference", label: "Barnevernets referanse", tracking: true, later: true },
    { id: "response", label: "Svar fra barnevernet", type: "textarea", wide: true, tracking: true, later: true },
    { id: "note", label: "Intern merknad", type: "textarea", wide: true, tracking: true },
  ],
  network_contact: [
    { id: "contact", label: "Hvem kontaktes?", type: "select", options: [["", "– velg –"], ...CONTACTS], required: "start" },
    { id: "contact_other", label: "Annen (hvem)" },
    { id: "consent", label: "Barnets samtykke", type: "select", required: "start", options: [["", "– velg –"],
      ["given", "Barnet er enig"], ["refused", "Barnet vil ikke"], ["not_asked", "Ikke spurt"],
      ["not_required", "Ikke nødvendig (fare)"]] },
    { id: "consent_note", label: "Om samtykket", type: "textarea", wide: true },
    { id: "contact_person.name", label: "Kontaktperson", identifying: true },
    { id: "contact_person.phone", label: "Telefon", identifying: true },
    { id: "contact_person.organisation", label: "Virksomhet", identifying: true },
    { id: "contacted_at", label: "Kontaktet (tidspunkt)", type: "datetime", later: true },
    { id: "contacted_by", label: "Kontaktet av", later: true },
    { id: "outcome", label: "Utfall", type: "textarea", wide: true, later: true },
    { id: "note", label: "Hva skal formidles / merknad", type: "textarea", wide: true },
  ],
  referral: [
    { id: "services", label: "Tjenester barnet er informert om", type: "services", wide: true, required: "start" },
    { id: "note", label: "Merknad", type: "textarea", wide: true },
  ],
};
const GUIDE = {
  acute_danger: ["Spør om barnet er trygt akkurat nå.", "Avklar hvor barnet er, om barnet vil si det.",
    "Avklar om det er en trygg voksen i nærheten.", "Kontakt nødetat ved behov – og bli i chatten til hjelpen er der.",
    "Vakthavende varsles når du registrerer."],
  report_of_concern: ["Utkastet fylles ut med det samtalen og kodingen sier.", "Vakthavende godkjenner før det sendes.",
    "Barnevernet skal vurdere meldingen innen en uke."],
  network_contact: ["Spør barnet om samtykke før du kontakter noen, med mindre barnet er i fare."],
  referral: ["Velg tjenestene du har fortalt barnet om."],
};
const ESC_STATUS = { open: "åpen", emergency_contacted: "nødetat kontaktet", closed: "lukket", draft: "utkast",
  approved: "godkjent", sent: "sendt", acknowledged: "mottak bekreftet", contacted: "kontaktet", recorded: "registrert" };
const MOVES = { approved: "Godkjenn", draft: "Tilbake til utkast", sent: "Marker som sendt",
  acknowledged: "Barnevernet har bekreftet mottak", closed: "Lukk saken", emergency_contacted: "Nødetat er kontaktet",
  contacted: "Kontakt er tatt" };
const SAVE_LABEL = { acute_danger: "Registrer akutt fare og varsle vakthavende", report_of_concern: "Lagre utkast",
  network_contact: "Registrer kontakt", referral: "Registrer henvisning" };

const getPath = (obj, path) => path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
function setPath(obj, path, value) {
  const keys = path.split(".");
  let at = obj;
  for (const key of keys.slice(0, -1)) at = at[key] ??= {};
  at[keys.at(-1)] = value;
}
const fieldKey = (id) => `details.${id}`;

// Build the inputs of one kind into `box`; returns a function that gives the
// changed values as a details patch (null removes a field).
function buildFields(box, kind, { values = {}, editable = () => true, create = false, stored = [] } = {}) {
  const inputs = [];
  const nodes = [];
  for (const field of FIELDS[kind] || []) {
    if (create && (field.later || field.tracking && field.id !== "note")) continue;
    const id = `${box.id}-${field.id.replace(/\W/g, "_")}`;
    const initial = getPath(values, field.id);
    let input;
    if (field.type === "select") {
      input = h("select", { id }, field.options.map(([value, label]) => h("option", { value }, label)));
      input.value = initial ?? "";
    } else if (field.type === "textarea" || field.type === "lines") {
      input = h("textarea", { id, rows: field.type === "lines" ? 3 : 2, maxlength: 4000 });
      input.value = field.type === "lines" ? (initial || []).join("\n") : initial ?? "";
    } else if (field.type === "checkbox") {
      input = h("input", { id, type: "checkbox" });
      input.checked = Boolean(initial);
    } else if (field.type === "services") {
      input = h("select", { id, multiple: true, size: 6 }, (state.services || []).map((s) =>
        h("option", { value: s.id, selected: (initial || []).includes(s.id) }, `${s.name}${s.phone ? ` – ${s.phone}` : ""}`)));
    } else {
      input = h("input", { id, type: field.type === "number" ? "number" : field.type === "datetime" ? "datetime-local" : "text",
        min: field.min, max: field.max, step: field.type === "datetime" ? 60 : undefined, maxlength: field.type ? undefined : 500 });
      input.value = field.type === "datetime" ? toLocalInput(initial) : initial ?? "";
    }
    const top = field.id.split(".")[0];
    const hidden = field.identifying && !supervisor() && stored.includes(top);
    if (hidden) input.placeholder = "Lagret – bare vakthavende ser det";
    input.disabled = !editable(field);
    const start = readField(field, input);
    inputs.push({ field, input, start });
    const label = h("label", { for: id }, field.label, field.identifying ? h("span", { class: "pill ident", title: "Identifiserende: bare vakthavende kan lese det" }, "ID") : null);
    const error = h("p", { class: "error small", "data-field": fieldKey(field.id) });
    nodes.push(field.type === "checkbox"
      ? h("div", { class: field.wide ? "wide" : "" }, h("label", { for: id }, input, ` ${field.label}`), error)
      : h("div", { class: field.wide ? "wide" : "" }, label, input, error));
  }
  box.replaceChildren(...nodes);
  return () => {
    const patch = {};
    for (const { field, input, start } of inputs) {
      if (input.disabled) continue;
      const now = readField(field, input);
      if (JSON.stringify(now) === JSON.stringify(start)) continue;
      // A counsellor cannot read identifying details, so never blanks them either.
      if (now === null && field.identifying && !supervisor()) continue;
      setPath(patch, field.id, now);
    }
    return patch;
  };
}
function readField(field, input) {
  if (field.type === "checkbox") return input.checked;
  if (field.type === "services") return [...input.selectedOptions].map((o) => o.value).filter(Boolean);
  const raw = input.value.trim();
  if (field.type === "lines") {
    const lines = raw.split("\n").map((l) => l.trim()).filter(Boolean);
    return lines.length ? lines : null;
  }
  if (!raw) return null;
  if (field.type === "number") return Number(raw);
  if (field.type === "datetime") return fromLocalInput(raw);
  return raw;
}
function showFieldErrors(box, result) {
  for (const node of box.querySelectorAll("[data-field]")) node.textContent = "";
  const fields = result.data?.error?.fields || {};
  const unplaced = [];
  for (const [key, messages] of Object.entries(fields)) {
    const node = box.querySelector(`[data-field="${CSS.escape(key)}"]`);
    if (node) node.textContent = messages.join(" ");
    else unplaced.push(`${key}: ${messages.join(" ")}`);
  }
  return unplaced;
}
function statusMessage(result) {
  const message = result.data?.error?.message;
  if (result.status === 409) return `Ikke mulig nå: ${message || "feil tilstand"}`;
  if (result.status === 422) return `Noe mangler eller er ugyldig: ${message || ""} Se merknadene ved feltene.`;
  if (result.status === 403) return `Ikke tillatt: ${message || ""}`;
  return problem(result);
}

let escalating = null;
let collectNew = null;
async function loadServices() {
  if (state.services) return;
  const result = await call("GET", "/api/v1/services");
  state.services = result.ok ? (result.data.services || []) : [];
}
async function openEscalation(chat) {
  escalating = chat;
  $("escalate-sub").textContent = `${who(chat.gender, chat.age)} · chat ${short(chat.id)}`;
  $("escalate-form").reset();
  $("escalate-error").hidden = true;
  await loadServices();
  showKind();
  $("escalate-dialog").showModal();
}
function showKind() {
  const kind = $("escalate-form").elements.kind.value;
  $("e-guide").replaceChildren(h("ul", {}, (GUIDE[kind] || []).map((line) => h("li", {}, line))));
  collectNew = buildFields($("e-fields"), kind, { create: true });
  $("escalate-save").textContent = SAVE_LABEL[kind];
  $("escalate-error").hidden = true;
}
async function saveEscalation(event) {
  event.preventDefault();
  const kind = $("escalate-form").elements.kind.value;
  const details = collectNew();
  const result = await call("POST", `/api/v1/chats/${escalating.id}/escalations`, { kind, details });
  if (!result.ok) {
    const unplaced = showFieldErrors($("e-fields"), result);
    $("escalate-error").textContent = `${statusMessage(result)} ${unplaced.join(" ")}`.trim();
    $("escalate-error").hidden = false;
    return;
  }
  if (kind === "referral" && escalating.status === "active") {
    const told = (state.services || []).filter((s) => details.services?.includes(s.id));
    const text = told.map((s) => `${s.name}${s.phone ? ` (${s.phone})` : ""}${s.description_nb ? `: ${s.description_nb}` : ""}`).join("\n");
    if (text) await call("POST", `/api/v1/chats/${escalating.id}/messages`, { text: `Du kan også ta kontakt med:\n${text}` });
  }
  $("escalate-dialog").close();
  if (kind === "acute_danger") escalating.flags.push({ kind, reason: "Akutt fare registrert" });
  renderCard(escalating);
  syncChat(escalating);
  loadChatEscalations(escalating);
  await showEscalation(result.data.escalation_id, kind === "report_of_concern" ? "Utkastet er lagret." : "Registrert.");
}

async function loadChatEscalations(chat) {
  const result = await call("GET", `/api/v1/chats/${chat.id}/escalations`);
  if (!result.ok) return;
  chat.escalations = result.data.escalations || [];
  renderChatEscalations(chat);
}
function renderChatEscalations(chat) {
  const list = chat.card.querySelector(".chat-escalations");
  const items = chat.escalations || [];
  list.hidden = !items.length;
  list.replaceChildren(...items.map((esc) => h("li", {}, h("button", { type: "button",
    class: `ghost small-btn esc-chip ${esc.open ? "" : "done"}`, onclick: () => showEscalation(esc.escalation_id) },
  `${KIND[esc.kind] || esc.kind}: ${ESC_STATUS[esc.status] || esc.status}`))));
}

async function refreshEscalations() {
  const result = await call("GET", "/api/v1/escalations?status=open");
  if (!result.ok) return;
  state.escalations = result.data.escalations || [];
  renderEscalations();
}
function renderEscalations() {
  const at = (esc) => (esc.deadline ? new Date(esc.deadline).getTime() : Infinity);
  const list = (state.escalations || []).slice().sort((a, b) => at(a) - at(b) || a.created_at.localeCompare(b.created_at));
  $("escalations").replaceChildren(...list.map((esc) => h("li", { class: "esc", "data-escalation-id": esc.escalation_id },
    h("div", {}, h("strong", {}, KIND[esc.kind] || esc.kind), ` · chat ${short(esc.chat_id)} · `,
      h("span", { class: `pill st-${esc.status}` }, ESC_STATUS[esc.status] || esc.status)),
    esc.deadline ? h("div", { class: "small deadline", "data-deadline": esc.deadline })
      : h("div", { class: "small muted" }, `Åpnet ${dateTime(esc.created_at)}${esc.kind === "report_of_concern" && esc.status === "draft" ? " · venter på godkjenning" : ""}`),
    h("button", { type: "button", class: "ghost small-btn", onclick: () => showEscalation(esc.escalation_id) }, "Åpne"))));
  if (!list.length) $("escalations").append(h("li", { class: "muted" }, "Ingen åpne eskaleringer."));
  tick();
}

// The escalation being worked on in the dialog, and how to read its edited fields.
const detail = { id: null, view: null, collect: null };
async function showEscalation(id, note) {
  const result = await call("GET", `/api/v1/escalations/${id}`);
  if (!result.ok) { alert(problem(result)); return; }
  renderDetail(result.data, note);
  if (!$("detail-dialog").open) $("detail-dialog").showModal();
}
function renderDetail(view, note) {
  detail.id = view.escalation_id;
  detail.view = view;
  $("detail-title").textContent = KIND[view.kind] || view.kind;
  $("detail-status").textContent = ESC_STATUS[view.status] || view.status;
  $("detail-status").className = `pill st-${view.status}`;
  $("detail-meta").replaceChildren(...[["Chat", short(view.chat_id)], ["Opprettet", dateTime(view.created_at)],
    ["Sist endret", dateTime(view.updated_at)], view.sent_at ? ["Sendt", dateTime(view.sent_at)] : null]
    .filter(Boolean).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  const deadline = $("detail-deadline");
  deadline.hidden = !view.deadline;
  if (view.deadline) {
    deadline.replaceChildren(`Barnevernet skal vurdere meldingen innen ${view.assessment_days || 7} dager. `,
      h("span", { class: "deadline", "data-deadline": view.deadline }));
  }
  const hint = $("detail-hint");
  const draftWait = view.kind === "report_of_concern" && view.status === "draft" && !supervisor();
  hint.hidden = !(draftWait || view.kind === "report_of_concern" && view.status === "approved");
  hint.textContent = draftWait ? "Vakthavende godkjenner meldingen før den sendes. Fyll ut det du vet; årsak, tidspunkt og varighet må være med."
    : "Godkjent: innholdet er låst. Send meldingen (last ned PDF), og marker den som sendt.";
  const ident = $("detail-identifying");
  const stored = view.identifying?.fields || [];
  ident.hidden = !stored.length || view.identifying.visible;
  ident.textContent = "Identifiserende opplysninger er lagret kryptert og vises bare for vakthavende.";
  const locked = view.kind === "report_of_concern" && view.status !== "draft";
  const editable = (field) => view.open && (!locked || field.tracking);
  detail.collect = buildFields($("detail-fields"), view.kind, { values: view.details || {}, editable, stored });
  $("detail-save").hidden = !view.open;
  $("detail-error").hidden = true;
  $("detail-ok").hidden = !note;
  $("detail-ok").textContent = note || "";
  $("detail-moves").replaceChildren(...(view.next || []).map((status) => h("button", { type: "button",
    class: status === "closed" || status === "draft" ? "ghost" : "primary", "data-status": status,
    onclick: () => patchEscalation(status) }, MOVES[status] || status)));
  $("detail-history").querySelector("ol").replaceChildren(...(view.history || []).map((step) =>
    h("li", {}, `${dateTime(step.at)} · ${ESC_STATUS[step.status] || step.status} · ${step.name || step.by}${step.role === "supervisor" ? " (vakthavende)" : ""}`)));
  const pdf = $("detail-pdf");
  pdf.hidden = !(supervisor() && view.kind === "report_of_concern");
  showTranscript(view);
  const audit = $("detail-audit");
  audit.hidden = !supervisor();
  audit.open = false;
  audit.querySelector("ol").replaceChildren();
  tick();
}
// issue 13: the supervisor approving a report reads the chat beside the draft
// (GET …/transcript, audited by the server). Built here so the dialog's markup stays as it is.
async function showTranscript(view) {
  const fields = $("detail-fields");
  let box = $("detail-transcript");
  if (!box) {
    box = h("details", { id: "detail-transcript", class: "detail-transcript", open: true },
      h("summary", {}, "Samtalen (lesingen logges)"), h("ol", { class: "log", tabindex: "0", "aria-label": "Samtalen" }));
    fields.parentElement.insertBefore(box, fields);
    fields.parentElement.classList.add("with-transcript");
  }
  const wanted = supervisor() && view.kind === "report_of_concern";
  box.hidden = !wanted;
  const list = box.querySelector("ol");
  list.replaceChildren();
  if (!wanted) return;
  const result = await call("GET", `/api/v1/escalations/${view.escalation_id}/transcript`);
  if (detail.id !== view.escalation_id) return;
  if (!result.ok) { list.append(h("li", { class: "muted" }, `Samtalen kan ikke vises: ${problem(result)}`)); return; }
  const flagged = new Set((state.chats.get(view.chat_id)?.flags || []).map((f) => f.seq));
  list.replaceChildren(...result.data.messages.map((m) => h("li", {
    class: `msg ${m.sender}${m.visibility !== "all" ? " internal note" : ""}${flagged.has(m.seq) ? " flagged" : ""}`, "data-seq": m.seq },
    h("span", { class: "who" }, m.visibility !== "all" ? "Internt" : m.sender === "child" ? "Barnet" : m.sender === "counsellor" ? "Chatvert" : ""),
    h("p", { class: "text" }, m.text),
    h("span", { class: "meta" }, h("time", { datetime: m.sent_at }, dateTime(m.sent_at))))));
  if (!result.data.messages.length) list.append(h("li", { class: "muted" }, "Ingen meldinger (slettet etter lagringstiden?)."));
}

async function patchEscalation(status) {
  const details = detail.collect();
  const body = {};
  if (Object.keys(details).length) body.details = details;
  if (status) body.status = status;
  if (!body.details && !body.status) {
    $("detail-ok").textContent = "Ingen endringer å lagre.";
    $("detail-ok").hidden = false;
    return;
  }
  detail.busy = true;
  const result = await call("PATCH", `/api/v1/escalations/${detail.id}`, body).finally(() => { detail.busy = false; });
  if (!result.ok) {
    const unplaced = showFieldErrors($("detail-fields"), result);
    $("detail-error").textContent = `${statusMessage(result)} ${unplaced.join(" ")}`.trim();
    $("detail-error").hidden = false;
    $("detail-ok").hidden = true;
    return;
  }
  renderDetail(result.data, status ? `Status: ${ESC_STATUS[result.data.status] || result.data.status}.` : "Endringene er lagret.");
  afterEscalationChange(result.data.chat_id);
}
function afterEscalationChange(chatId) {
  const chat = state.chats.get(chatId);
  if (chat) loadChatEscalations(chat);
  if (supervisor()) refreshEscalations();
}
async function loadAudit() {
  const box = $("detail-audit");
  if (!box.open || !detail.id) return;
  const result = await call("GET", `/api/v1/escalations/${detail.id}/audit`);
  box.querySelector("ol").replaceChildren(...(result.ok ? result.data.audit : []).map((row) =>
    h("li", {}, `${dateTime(row.at)} · ${row.action} · ${row.role || ""} ${short(row.actor_id)}${row.detail ? ` · ${row.detail}` : ""}`)));
}
async function getPdf(id, near) {
  const status = await download(`/api/v1/escalations/${id}/report.pdf`, state.token, `bekymringsmelding-${short(id)}.pdf`);
  if (status !== 200) {
    near.textContent = status === 403 ? "Bare vakthavende kan laste ned meldingen." : `Kunne ikke hente PDF (${status}).`;
    near.hidden = false;
  }
}

// -- transfer ----------------------------------------------------------------------
let transferring = null;
async function openTransfer(chat) {
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
async function saveTransfer(event) {
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

// -- statistics ---------------------------------------------------------------------
function dayString(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}
function statsRange() {
  const from = $("stats-from").value;
  const to = new Date(`${$("stats-to").value}T00:00:00`);
  to.setDate(to.getDate() + 1);
  return `from=${from}&to=${dayString(to)}`;
}
async function loadStats(event) {
  event?.preventDefault();
  $("stats-error").hidden = true;
  const result = await call("GET", `/api/v1/stats?${statsRange()}`);
  if (!result.ok) {
    $("stats-error").textContent = problem(result);
    $("stats-error").hidden = false;
    return;
  }
  const s = result.data;
  const pct = (v) => (v === null || v === undefined ? "–" : `${Math.round(v * 100)} %`);
  const mins = (v) => (v === null || v === undefined ? "–" : v < 90 ? `${Math.round(v)} s` : `${Math.round(v / 60)} min`);
  $("stats-keys").replaceChildren(...[
    ["Samtaler", s.total_chats], ["Besvart", s.answered], ["Forlatt i kø", pct(s.abandoned_share)],
    ["Kodet", pct(s.coded_share)], ["Svart innen 5 min", pct(s.answered_within_5min_share)],
    ["Risiko svart innen 5 min", pct(s.at_risk_answered_within_5min_share)], ["Median ventetid", mins(s.wait_s?.p50)],
    ["Median varighet", mins(s.duration_s?.p50)],
  ].map(([label, value]) => h("div", { class: "key card" }, h("span", { class: "key-value" }, String(value ?? "–")), h("span", { class: "key-label" }, label))));
  const mains = (state.taxonomy?.categories || []).map((c) => [c.label, s.by_primary_main_category?.[c.code] || 0]);
  $("chart-main").replaceChildren(barChart(mains, { title: "Samtaler etter hovedkategori" }));
  const subs = Object.entries(s.by_primary_category || {}).filter(([code, n]) => code.includes(".") && n > 0)
    .sort((a, b) => b[1] - a[1]).slice(0, 10).map(([code, n]) => [labelOf(code).split(" › ")[1] || code, n]);
  $("chart-sub").replaceChildren(subs.length ? barChart(subs, { title: "De vanligste underkategoriene" })
    : h("p", { class: "muted" }, "Ingen kodede underkategorier i perioden."));
  $("chart-heat").replaceChildren(heatmap(s.hour_by_weekday || {}, { title: "Samtaler per time og ukedag" }));
  const waitBox = $("chart-wait");
  if (Array.isArray(s.wait_histogram) && s.wait_histogram.length) {
    waitBox.replaceChildren(barChart(s.wait_histogram.map((b) => [b.label || `≤ ${mins(b.le)}`, b.count]), { title: "Ventetid", vertical: true }));
  } else {
    waitBox.replaceChildren(percentileChart(s.wait_s || {}, s.abandoned_wait_s || {}, { title: "Ventetid, persentiler" }));
  }
  const genders = Object.entries(s.by_gender || {}).map(([k, n]) => [GENDER[k] || (k === "unknown" ? "Ikke kodet" : k), n]);
  const ages = Object.entries(s.by_age_band || {}).map(([k, n]) => [k === "unknown" ? "ukjent alder" : `${k} år`, n]);
  $("chart-who").replaceChildren(barChart([...genders, ...ages], { title: "Kjønn og aldersgruppe" }));
}
async function statsCsv() {
  const status = await download(`/api/v1/stats?${statsRange()}&format=csv`, state.token,
    `chatvakt-statistikk-${$("stats-from").value}-${$("stats-to").value}.csv`);
  if (status !== 200) { $("stats-error").textContent = `Kunne ikke laste ned CSV (${status}).`; $("stats-error").hidden = false; }
}

function showView(view) {
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

// -- wiring --------------------------------------------------------------------------
function init() {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("take-next").addEventListener("click", () => take(null));
  $("presence-status").addEventListener("change", () => setPresence($("presence-status").value, Number($("capacity").value) || 3));
  $("capacity").addEventListener("change", () => setPresence($("presence-status").value, Math.min(10, Math.max(1, Number($("capacity").value) || 1))));
  $("presence").addEventListener("submit", (event) => event.preventDefault());
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showView(tab.dataset.view));
  $("coding-form").addEventListener("submit", saveCoding);
  $("c-filter").addEventListener("input", buildTree);
  $("escalate-form").addEventListener("submit", saveEscalation);
  $("escalate-form").addEventListener("change", (event) => { if (event.target.name === "kind") showKind(); });
  $("detail-save").addEventListener("click", () => patchEscalation(null));
  $("detail-pdf").addEventListener("click", () => getPdf(detail.id, $("detail-error")));
  $("detail-audit").addEventListener("toggle", loadAudit);
  $("detail-form").addEventListener("submit", (event) => { if (event.submitter?.dataset.close === undefined) event.preventDefault(); });
  $("opt-in").addEventListener("click", () => setPresence(state.presence?.status === "offline" ? "available" : state.presence?.status || "available",
    Number($("capacity").value) || 3, true));
  $("transfer-form").addEventListener("submit", saveTransfer);
  $("stats-form").addEventListener("submit", loadStats);
  $("stats-csv").addEventListener("click", statsCsv);
  for (const button of document.querySelectorAll("[data-close]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }
  let saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(STORE) || "null"); } catch (error) { saved = null; }
  if (saved?.token && saved.me) {
    Object.assign(state, { token: saved.token, me: saved.me, presence: saved.presence });
    call("GET", "/api/v1/me").then((result) => {
      if (result.ok) enter(saved.open || []);
      else { sessionStorage.removeItem(STORE); $("username").focus(); }
    });
  } else {
    $("username").focus();
  }
}

init();
