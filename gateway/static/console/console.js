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
const ESC_STATUS = { open: "åpen", in_progress: "følges opp", closed: "lukket", sent: "sendt" };
// When no deadline comes with an escalation, the console suggests one.
const SUGGESTED_DEADLINE_MIN = { acute_danger: 15, report_of_concern: 24 * 60, network_contact: 24 * 60 };

const $ = (id) => document.getElementById(id);
const state = {
  token: null, me: null, live: null, chats: new Map(), queue: [], taxonomy: null, focused: null,
  features: { notes: true, whisper: true, phase: true, list: true, history: true, counsellors: true },
  services: null, presence: null,
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
  else renderPresence();
  renderMine();
  await Promise.all([refreshQueue(), refreshUncoded(), loadActive(openIds)]);
  if (supervisor()) refreshEscalations();
  setInterval(tick, 1000);
  setInterval(() => { refreshQueue(); if (supervisor()) { refreshAllChats(); refreshEscalations(); } }, 20000);
}

// -- presence ----------------------------------------------------------------
async function setPresence(status, capacity) {
  const result = await call("PUT", "/api/v1/presence", { status, capacity });
  if (result.ok) {
    state.presence = result.data;
    save();
  }
  renderPresence();
}
function renderPresence() {
  const presence = state.presence || { status: "offline", capacity: Number($("capacity").value), active_chats: 0 };
  $("presence-status").value = presence.status;
  $("capacity").value = presence.capacity || 3;
  const mine = [...state.chats.values()].filter((chat) => !chat.watch && chat.status === "active").length;
  $("load").textContent = `${mine} av ${presence.capacity || "–"} samtaler`;
  document.body.dataset.presence = presence.status;
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
      state.queue = data.waiting || [];
      state.available = data.available_counsellors;
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
      break;
    case "escalation.alert":
      raiseAlert(data);
      if (chat) {
        chat.flags.push(data);
        renderCard(chat);
      }
      break;
    case "escalation.raised":
    case "escalation.updated":
      if (supervisor()) refreshEscalations();
      if (name === "escalation.raised" && data.kind === "acute_danger" && supervisor()) {
        raiseAlert({ ...data, severity: "high", reason: "Akutt fare meldt av chatvert" });
      }
      break;
    default:
      break;
  }
}

// -- alerts: stay until acknowledged, say it out loud, flash the title -----------
function raiseAlert(data) {
  const known = state.chats.get(data.chat_id);
  const label = known ? who(known.gender, known.age) : `chat ${short(data.chat_id)}`;
  const severe = data.severity === "high" || data.kind === "acute_danger";
  const card = h("div", { class: `alert ${severe ? "high" : "medium"}`, role: "alert" },
    h("strong", {}, `${severe ? "⚠ AKUTT" : "⚠ Risiko"}: ${KIND[data.kind] || data.kind}${data.category ? ` – ${data.category}` : ""}`),
    h("span", {}, ` ${label}. ${data.reason || ""}`),
    h("span", { class: "alert-time" }, clock(data.detected_at || new Date().toISOString())),
    h("button", { type: "button", class: "primary", onclick: () => { focusOrOpen(data.chat_id); } }, "Åpne samtalen"),
    h("button", { type: "button", class: "ghost", onclick: () => { card.remove(); updateTitle(); } }, "Kvitter"));
  $("alerts").prepend(card);
  updateTitle();
  beep(severe);
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

// -- queue --------------------------------------------------------------------
async function refreshQueue() {
  const result = await call("GET", "/api/v1/queue");
  if (result.ok) {
    state.queue = result.data.waiting || [];
    state.available = result.data.available_counsellors;
    renderQueue();
  }
}
function renderQueue() {
  $("queue-count").textContent = state.queue.length;
  $("queue-info").textContent = `${state.available ?? "–"} tilgjengelige veiledere`;
  $("queue").replaceChildren(...state.queue.map((entry, index) => h("li", { class: `q ${entry.risk ? "risk" : ""}`, "data-chat-id": entry.chat_id },
    h("div", { class: "q-main" },
      h("strong", {}, `${index + 1}. ${who(entry.gender, entry.age)}`),
      entry.risk ? h("span", { class: "pill risk" }, "Risiko") : null,
      entry.priority ? h("span", { class: "pill" }, `prioritet ${entry.priority}`) : null),
    entry.reason ? h("p", { class: "q-reason small" }, entry.reason) : null,
    h("div", { class: "q-foot small" },
      h("span", {}, "Venter "), h("span", { "data-since": entry.waiting_since }, since(entry.waiting_since)),
      h("button", { type: "button", class: "ghost small-btn", onclick: () => take(entry.chat_id),
        "aria-label": `Ta ${who(entry.gender, entry.age)}` }, "Ta")))));
}
async function take(chatId) {
  $("queue-error").hidden = true;
  const result = await call("POST", "/api/v1/queue/take", chatId ? { chat_id: chatId } : {});
  if (result.status === 204) {
    $("queue-error").textContent = "Ingen venter i køen.";
    $("queue-error").hidden = false;
  } else if (!result.ok) {
    $("queue-error").textContent = result.status === 409 ? "Du har nådd kapasiteten din (eller er ikke tilgjengelig)." : problem(result);
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
async function refreshEscalations() {
  const result = await call("GET", "/api/v1/escalations?status=open");
  if (!result.ok) return;
  state.escalations = result.data.escalations || [];
  renderEscalations();
}
function deadlineOf(escalation) {
  const given = escalation.deadline || escalation.due_at || escalation.details?.deadline;
  if (given) return { at: new Date(given), suggested: false };
  const minutes = SUGGESTED_DEADLINE_MIN[escalation.kind];
  if (!minutes) return null;
  return { at: new Date(new Date(escalation.created_at).getTime() + minutes * 60000), suggested: true };
}
function renderEscalations() {
  const list = (state.escalations || []).slice().sort((a, b) =>
    (deadlineOf(a)?.at ?? Infinity) - (deadlineOf(b)?.at ?? Infinity));
  $("escalations").replaceChildren(...list.map((esc) => {
    const deadline = deadlineOf(esc);
    return h("li", { class: "esc" },
      h("div", {}, h("strong", {}, KIND[esc.kind] || esc.kind), ` · chat ${short(esc.chat_id)} · ${ESC_STATUS[esc.status] || esc.status}`),
      deadline ? h("div", { class: "small deadline", "data-deadline": deadline.at.toISOString(),
        "data-suggested": deadline.suggested ? "1" : "" }) : h("div", { class: "small muted" }, "Ingen frist"),
      h("div", { class: "row" },
        h("button", { type: "button", class: "ghost small-btn", onclick: () => showEscalation(esc) }, "Detaljer"),
        h("button", { type: "button", class: "ghost small-btn", onclick: () => updateEscalation(esc, "in_progress") }, "Følges opp"),
        h("button", { type: "button", class: "ghost small-btn", onclick: () => updateEscalation(esc, "closed") }, "Lukk")));
  }));
  if (!list.length) $("escalations").append(h("li", { class: "muted" }, "Ingen åpne eskaleringer."));
  tick();
}
async function updateEscalation(esc, status) {
  const result = await call("PATCH", `/api/v1/escalations/${esc.escalation_id}`, { status });
  if (missing(result)) { alert("Oppfølging av eskaleringer er ikke tilgjengelig ennå."); return; }
  if (!result.ok) { alert(problem(result)); return; }
  refreshEscalations();
}
async function showEscalation(esc) {
  const fresh = await call("GET", `/api/v1/escalations/${esc.escalation_id}`);
  const data = fresh.ok ? fresh.data : esc;
  const body = $("detail-body");
  const rows = [["Type", KIND[data.kind] || data.kind], ["Status", data.status], ["Chat", data.chat_id],
    ["Opprettet", dateTime(data.created_at)]];
  const deadline = deadlineOf(data);
  if (deadline) rows.push(["Frist", `${dateTime(deadline.at.toISOString())}${deadline.suggested ? " (foreslått)" : ""}`]);
  for (const [key, value] of Object.entries(data.details || {})) {
    rows.push([key, typeof value === "object" ? JSON.stringify(value) : String(value)]);
  }
  body.replaceChildren(...rows.flatMap(([key, value]) => [h("dt", {}, key), h("dd", {}, value)]));
  $("detail-title").textContent = `${KIND[data.kind] || data.kind}`;
  const pdf = $("detail-pdf");
  pdf.hidden = data.kind !== "report_of_concern";
  pdf.onclick = () => getPdf(data.escalation_id, $("detail-title"));
  $("detail-dialog").showModal();
}
async function getPdf(id, near) {
  const status = await download(`/api/v1/escalations/${id}/report.pdf`, state.token, `bekymringsmelding-${short(id)}.pdf`);
  if (status !== 200) {
    near.after(h("p", { class: "error small", role: "alert" },
      status === 404 || status === 405 ? "PDF-en er ikke tilgjengelig ennå." : `Kunne ikke hente PDF (${status}).`));
  }
}

// Once a second: wait times and deadlines.
function tick() {
  for (const node of document.querySelectorAll("[data-since]")) node.textContent = since(node.dataset.since);
  for (const node of document.querySelectorAll("[data-deadline]")) {
    const left = new Date(node.dataset.deadline).getTime() - Date.now();
    const minutes = Math.round(Math.abs(left) / 60000);
    const text = minutes >= 120 ? `${Math.round(minutes / 60)} t` : `${minutes} min`;
    node.textContent = `${left < 0 ? `Frist passert for ${text} siden` : `Frist om ${text}`}${node.dataset.suggested ? " (foreslått)" : ""}`;
    node.classList.toggle("overdue", left < 0);
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
    counsellor: info.counsellor, lastSeq: 0, unread: 0, seen: new Set(), flags: [],
    watch: Boolean(info.counsellor?.id && info.counsellor.id !== state.me.id),
    mode: "child", typingAt: 0,
  };
  if (extra.risk) chat.flags.push({ kind: "risk", reason: extra.reason });
  chat.card = buildCard(chat);
  state.chats.set(chatId, chat);
  $("chats").append(chat.card);
  renderCard(chat);
  renderMine();
  save();
  await syncChat(chat);
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
  card.querySelector(".act-transfer").addEventListener("click", () => openTransfer(chat));
  card.querySelector(".act-end").addEventListener("click", () => endChat(chat));
  return card;
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
  const stateText = { active: "aktiv", waiting: "venter", ended: "avsluttet", abandoned: "forlatt" }[chat.status] || chat.status;
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
  flags.textContent = risky ? `Flagg: ${chat.flags.map((f) => [f.category, f.reason].filter(Boolean).join(" – ")).join("; ")}` : "";
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
  const result = await call("GET", `/api/v1/chats/${chatId}/coding`);
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
  document.querySelector(`input[name="c-danger"][value="${data.acute_danger ? "yes" : "no"}"]`).checked = true;
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
  const versions = result.ok ? (result.data.history || result.data.versions || []) : [];
  if (!versions.length) return;
  box.querySelector("ol").replaceChildren(...versions.map((v) => h("li", {},
    `${dateTime(v.coded_at || v.at)} · ${v.coded_by?.name || v.coded_by || ""} · ${(v.categories || []).map(labelOf).join(", ")}`)));
  box.hidden = false;
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
    acute_danger: document.querySelector('input[name="c-danger"]:checked').value === "yes",
    contact_type: $("c-contact").value,
    time_in: fromLocalInput($("c-in").value),
    time_out: fromLocalInput($("c-out").value),
    notes: $("c-notes").value.trim() || null,
  };
  const result = await call("PUT", `/api/v1/chats/${coding.chatId}/coding`, body);
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
let escalating = null;
async function openEscalation(chat) {
  escalating = chat;
  $("escalate-sub").textContent = `${who(chat.gender, chat.age)} · chat ${short(chat.id)}`;
  $("escalate-form").reset();
  $("escalate-error").hidden = true;
  $("r-result").hidden = true;
  $("pdf-button").hidden = true;
  $("escalate-save").hidden = false;
  showKind();
  if (!state.services) {
    const result = await call("GET", "/api/v1/services");
    state.services = result.ok ? (result.data.services || []) : [];
    $("s-service").replaceChildren(...state.services.map((s) => h("option", { value: s.id }, `${s.name} – ${s.phone}`)));
    describeService();
  }
  $("escalate-dialog").showModal();
}
function showKind() {
  const kind = $("escalate-form").elements.kind.value;
  for (const pane of document.querySelectorAll(".kind-pane")) pane.hidden = pane.dataset.kind !== kind;
  $("escalate-save").textContent = { acute_danger: "Registrer akutt fare og varsle vakthavende",
    report_of_concern: "Lagre utkast", network_contact: "Registrer kontakt", referral: "Registrer henvisning" }[kind];
}
function describeService() {
  const service = (state.services || []).find((s) => s.id === $("s-service").value);
  $("s-desc").textContent = service ? service.description_nb || "" : "";
}
async function saveEscalation(event) {
  event.preventDefault();
  const form = $("escalate-form");
  const f = form.elements;
  const kind = f.kind.value;
  let details;
  if (kind === "acute_danger") {
    details = { checklist: Object.fromEntries(["asked_safe", "location", "adults", "emergency_called", "supervisor_told", "stay"]
      .map((name) => [name, f[name].checked])), emergency_service: f.emergency_service.value || null,
    notes: f.acute_notes.value.trim() || null };
  } else if (kind === "report_of_concern") {
    if (!f.what.value.trim()) {
      $("escalate-error").textContent = "Skriv hva som gir bekymring.";
      $("escalate-error").hidden = false;
      f.what.focus();
      return;
    }
    details = { concerns: f.concerns.value.trim(), municipality: f.municipality.value.trim(), what: f.what.value.trim(),
      when: f.when.value.trim(), frequency: f.frequency.value, others_aware: f.others_aware.value.trim(),
      reporter: f.anonymous_reporter.checked ? null : (f.reporter.value.trim() || state.me.name),
      anonymous_reporter: f.anonymous_reporter.checked, urgent: f.urgent.checked, draft: true };
  } else if (kind === "network_contact") {
    details = { contact: f.contact.value, channel: f.channel.value, child_consent: f.child_consent.checked,
      notes: f.network_notes.value.trim() || null };
  } else {
    const service = (state.services || []).find((s) => s.id === f.service.value);
    details = { service_id: service?.id, service_name: service?.name, phone: service?.phone, told_child: f.tell_child.checked };
    if (service && f.tell_child.checked && escalating.status === "active") {
      await call("POST", `/api/v1/chats/${escalating.id}/messages`,
        { text: `Du kan også kontakte ${service.name} på ${service.phone}. ${service.description_nb || ""}`.trim() });
    }
  }
  const result = await call("POST", `/api/v1/chats/${escalating.id}/escalations`, { kind, details });
  if (!result.ok) {
    $("escalate-error").textContent = problem(result);
    $("escalate-error").hidden = false;
    return;
  }
  const id = result.data.escalation_id;
  if (kind === "report_of_concern") {
    $("r-result").textContent = `Utkastet er lagret (${short(id)}). Vakthavende følger det opp. Last ned PDF for å sende den.`;
    $("r-result").hidden = false;
    $("pdf-button").hidden = false;
    $("pdf-button").onclick = () => getPdf(id, $("r-result"));
    $("escalate-save").hidden = true;
  } else {
    $("escalate-dialog").close();
  }
  if (kind === "acute_danger") escalating.flags.push({ kind, reason: "Akutt fare registrert" });
  renderCard(escalating);
  syncChat(escalating);
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
      const people = (result.data.counsellors || []).filter((c) => c.id !== state.me.id);
      select.replaceChildren(...people.map((c) => h("option", { value: c.id },
        `${c.name}${c.status ? ` (${c.status}${c.capacity ? `, ${c.active_chats ?? 0}/${c.capacity}` : ""})` : ""}`)));
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
  $("s-service").addEventListener("change", describeService);
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
