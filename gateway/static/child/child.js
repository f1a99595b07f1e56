// The child's chat page. Nothing is kept in the browser but this tab's chat
// token (sessionStorage, so an accidental reload does not lose the chat);
// it goes when the chat ends, on quick exit, or when the tab is closed.
import { api, clientId, h, Live } from "/static/common/net.js";
import { linkify } from "/static/common/tel.js";

const EXIT_URL = "https://www.google.com/";
const STORE = "chatvakt-chat";
const TYPING_EVERY_MS = 3000;
const TYPING_SHOWN_MS = 5000;

const WORDS = {
  skip: ["Hopp til chatten", "Skip to the chat"], brand: ["Alarmtelefonen", "Alarmtelefonen"],
  langSwitch: ["English", "Norsk"], emergencyButton: ["Nødnumre", "Emergency numbers"],
  exit: ["Avslutt raskt", "Quick exit"],
  exitTitle: ["Lukker chatten og går til en annen nettside", "Closes the chat and goes to another website"],
  startTitle: ["Chat med en voksen", "Chat with an adult"],
  startLead: ["Du kan skrive om alt som er vanskelig. Du er anonym – du trenger ikke si hvem du er.",
    "You can write about anything that is hard. You are anonymous – you don't have to say who you are."],
  fact1: ["Gratis, og åpent hele døgnet.", "Free, and open around the clock."],
  fact2: ["Vi ser ikke hvem du er eller hvor du er.", "We cannot see who you are or where you are."],
  fact3: ["Trykk «Avslutt raskt» øverst (eller Esc to ganger) hvis du må lukke chatten fort.",
    "Press “Quick exit” at the top (or Esc twice) if you need to close the chat fast."],
  callUs: ["Ring oss:", "Call us:"], newBelow: ["Ny melding", "New message"],
  endedNumbersTitle: ["Er du i fare nå? Ring:", "In danger now? Call:"],
  clearScreen: ["Tøm skjermen", "Clear the screen"],
  cleared: ["Skjermen er tømt. Samtalen vises ikke her lenger.",
    "The screen is cleared. The conversation is no longer shown here."],
  tracesTitle: ["Skjul sporene dine", "Hide your traces"],
  traces1: ["Bruk privat nettlesing (inkognito) neste gang, så lagres ikke besøket i loggen.",
    "Use private browsing (incognito) next time, so the visit is not kept in the history."],
  traces2: ["Slett nettleserloggen hvis andre kan se telefonen eller PC-en din.",
    "Clear the browser history if others can see your phone or computer."],
  notices: [{ no_counsellor: "Alle de voksne snakker med andre akkurat nå. Du kan vente her, så svarer vi deg så snart en av oss er ledig.", closed: "Chatten er stengt akkurat nå. Du kan vente her, så svarer vi deg når vi åpner." },
    { no_counsellor: "All the adults are talking with others right now. You can wait here, and we will answer you as soon as one of us is free.", closed: "The chat is closed right now. You can wait here, and we will answer you when we open." }],
  genderLegend: ["Jeg er (valgfritt)", "I am (optional)"], girl: ["Jente", "A girl"], boy: ["Gutt", "A boy"],
  other: ["Annet", "Other"], noSay: ["Vil ikke si", "Rather not say"], ageLabel: ["Alder (valgfritt)", "Age (optional)"],
  firstLabel: ["Vil du skrive noe allerede nå? (valgfritt)", "Do you want to write something already? (optional)"],
  startButton: ["Start chat", "Start chat"], starting: ["Starter …", "Starting …"],
  inDanger: ["Er du i fare nå? Se nødnumre", "In danger now? See emergency numbers"], chatTitle: ["Chatten", "The chat"],
  whileWaiting: ["Er du i fare nå? Ring med en gang:", "In danger now? Call at once:"],
  endedHelp: ["Trenger du mer hjelp, kan du starte en ny chat eller ringe 116 111.",
    "If you need more help, you can start a new chat or call 116 111."],
  newChat: ["Start en ny chat", "Start a new chat"], messageLabel: ["Skriv en melding", "Write a message"],
  placeholder: ["Skriv her …", "Write here …"], send: ["Send", "Send"], end: ["Avslutt chatten", "End the chat"],
  emergencyTitle: ["Nødnumre", "Emergency numbers"],
  emergencyLead: ["Er du eller noen andre i fare nå, ring med en gang. Det er gratis.",
    "If you or someone else is in danger now, call at once. It is free."],
  close: ["Lukk", "Close"], confirmEndTitle: ["Vil du avslutte chatten?", "Do you want to end the chat?"],
  confirmEndText: ["Du kan alltid starte en ny chat senere.", "You can always start a new chat later."],
  keepChatting: ["Nei, fortsett", "No, continue"], yesEnd: ["Ja, avslutt", "Yes, end it"],
  position: [(n) => (n === 1 ? "Du er den neste i køen." : `Du er nummer ${n} i køen.`),
    (n) => (n === 1 ? "You are next in the queue." : `You are number ${n} in the queue.`)],
  inQueue: ["Du står i køen. En voksen svarer deg snart.", "You are in the queue. An adult will answer you soon."],
  wait: [(s) => (s < 90 ? "Det tar omtrent ett minutt før en voksen svarer. Du kan skrive mens du venter." :
      `Det tar omtrent ${Math.round(s / 60)} minutter før en voksen svarer. Du kan skrive mens du venter.`),
    (s) => (s < 90 ? "It takes about one minute before an adult answers. You can write while you wait." :
      `It takes about ${Math.round(s / 60)} minutes before an adult answers. You can write while you wait.`)],
  waitUnknown: ["En voksen svarer deg så snart vi kan. Du kan skrive mens du venter.",
    "An adult will answer you as soon as we can. You can write while you wait."],
  connected: [(name) => (name ? `Du snakker med ${name}.` : "Du snakker med en voksen."),
    (name) => (name ? `You are talking with ${name}.` : "You are talking with an adult.")],
  you: ["Du", "You"], adult: ["Voksen", "Adult"], sending: ["Sender …", "Sending …"], sent: ["Sendt", "Sent"],
  delivered: ["Levert", "Delivered"], failed: ["Ikke sendt.", "Not sent."], retry: ["Prøv igjen", "Try again"],
  typing: [(name) => `${name || "Den voksne"} skriver …`, (name) => `${name || "The adult"} is typing …`],
  newFrom: [(name, text) => `Ny melding fra ${name}: ${text}`, (name, text) => `New message from ${name}: ${text}`],
  reconnecting: ["Mistet forbindelsen. Kobler til igjen …", "Lost the connection. Reconnecting …"],
  back: ["Tilkoblet igjen.", "Connected again."], endedByYou: ["Du avsluttet chatten.", "You ended the chat."],
  endedByThem: ["Chatten er avsluttet.", "The chat has ended."],
  endedQuiet: ["Chatten ble avsluttet fordi det var stille lenge.",
    "The chat was ended because it had been quiet for a long time."],
  startFailed: ["Vi fikk ikke startet chatten. Sjekk nettet og prøv igjen.",
    "We could not start the chat. Check your connection and try again."],
  busy: ["Det er mange som prøver akkurat nå. Vent litt og prøv igjen.",
    "Many are trying right now. Wait a little and try again."],
  tooLong: ["Meldingen er for lang (høyst 4000 tegn).", "The message is too long (at most 4000 characters)."],
  numbers: [[["112", "Politi", "når noen er i fare"], ["113", "Ambulanse", "ved skade eller akutt sykdom"], ["110", "Brann", ""], ["116 117", "Legevakt", "når du trenger lege"], ["116 111", "Alarmtelefonen for barn og unge", "gratis, hele døgnet"]],
    [["112", "Police", "when someone is in danger"], ["113", "Ambulance", "injury or sudden illness"], ["110", "Fire", ""], ["116 117", "Out-of-hours doctor", "when you need a doctor"], ["116 111", "Alarmtelefonen for children and young people", "free, around the clock"]]],
  shortNumbers: [[["112", "politi"], ["113", "ambulanse"], ["110", "brann"]],
    [["112", "police"], ["113", "ambulance"], ["110", "fire"]]],
  dangerLegend: ["Er du i fare akkurat nå?", "Are you in danger right now?"], dangerYes: ["Ja", "Yes"],
  dangerNo: ["Nei", "No"], dangerSkip: ["Vil ikke svare", "Rather not say"],
  dangerHint: ["Du velger selv om du vil svare. Svarer du ja, ser de voksne det med en gang.",
    "It is up to you whether you answer. If you say yes, the adults see it at once."],
  helpNow: ["Jeg trenger hjelp nå", "I need help now"],
  helpSaid: ["Takk for at du sa ifra. De voksne ser det og svarer deg så fort de kan. Haster det, ring 112.",
    "Thank you for telling us. The adults see it and will answer you as fast as they can. If it is urgent, call 112."],
  helpFailed: ["Det ble ikke sendt. Prøv igjen, eller ring 112 hvis det haster.",
    "It was not sent. Try again, or call 112 if it is urgent."],
};
const TEXT = { nb: {}, en: {} };
for (const [key, [nb, en]] of Object.entries(WORDS)) { TEXT.nb[key] = nb; TEXT.en[key] = en; }

// System messages come in the helpline's Norwegian; `kind` says which one it is,
// so the English page can say it in English (names are taken from the text).
const SYSTEM_EN = {
  welcome: (text) => `Hi, welcome to ${(/velkommen til ([^.]+)\./.exec(text) || [])[1] || "Alarmtelefonen"}. What would you like to talk to us about?`,
  connected: (text) => {
    const name = (/med (.+?)\.?$/.exec(text) || [])[1];
    return name ? `You are now talking with ${name}.` : "You are now talking with an adult.";
  },
  transferred: (text) => {
    const name = (/til (.+?)\.?$/.exec(text) || [])[1];
    return name ? `The chat has been passed on to ${name}.` : "The chat has been passed on to another adult.";
  },
  ended: (text) => (/stille/.test(text) ? TEXT.en.endedQuiet : TEXT.en.endedByThem),
};
function systemText(kind, text) {
  return state.lang === "en" && SYSTEM_EN[kind] ? SYSTEM_EN[kind](text) : text;
}

const $ = (id) => document.getElementById(id);
const state = {
  lang: new URLSearchParams(location.search).get("lang") === "en" ? "en" : "nb",
  chatId: null, token: null, status: null, counsellor: null, lastSeq: 0,
  live: null, bySeq: new Map(), pending: [], lastTypingSent: 0, typingTimer: null,
  poll: null, syncing: null, stick: true, opener: null, lastEscape: 0,
};
const t = (key, ...args) => {
  const value = TEXT[state.lang][key];
  return typeof value === "function" ? value(...args) : value;
};

// -- language --------------------------------------------------------------
function applyLanguage() {
  document.documentElement.lang = state.lang;
  document.title = state.lang === "en" ? "Chat with Alarmtelefonen" : "Chat med Alarmtelefonen";
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
  for (const node of document.querySelectorAll("[data-i18n-title]")) node.title = t(node.dataset.i18nTitle);
  $("lang").lang = state.lang === "en" ? "nb" : "en";
  for (const list of document.querySelectorAll("[data-numbers='short']")) {
    list.replaceChildren(...t("shortNumbers").map(([number, name]) => h("li", {},
      h("a", { href: `tel:${number.replace(/\s/g, "")}`, class: "number" }, number, " ", h("small", {}, name)))));
  }
  for (const list of document.querySelectorAll("[data-numbers='']")) {
    list.replaceChildren(...t("numbers").map(([number, name, note]) => h("li", {},
      h("a", { href: `tel:${number.replace(/\s/g, "")}`, class: "number" }, number),
      h("span", { class: "number-name" }, name, note ? h("small", {}, note) : null))));
  }
  renderQueue();
  renderCounsellor();
  for (const item of state.bySeq.values()) {
    if (item.mine) renderStatus(item);
    if (item.kind && item.el) item.el.querySelector(".text").replaceChildren(linkify(systemText(item.kind, item.text)));
  }
  if (state.endedShown) $("ended-text").textContent = endedText(state.endedBy);
  if ($("cleared").textContent) $("cleared").textContent = t("cleared");
  for (const item of state.pending) renderStatus(item);
}

// -- storage ------------------------------------------------------------------
function remember() {
  try {
    sessionStorage.setItem(STORE, JSON.stringify({ chat_id: state.chatId, token: state.token, lang: state.lang }));
  } catch (error) { /* private mode: the chat lives in memory only */ }
}
function forget() {
  try { sessionStorage.clear(); localStorage.clear(); } catch (error) { /* nothing stored */ }
}

// -- quick exit --------------------------------------------------------------
function quickExit() {
  if (state.chatId && state.token && !isOver()) {
    // keepalive lets the request finish after the page is gone; sendBeacon cannot carry the token.
    fetch(`/api/v1/chats/${state.chatId}/end`, {
      method: "POST", keepalive: true, credentials: "omit",
      headers: { Authorization: `Bearer ${state.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ reason: "quick_exit" }),
    }).catch(() => {});
  }
  forget();
  if (state.live) state.live.stop();
  state.token = null;
  state.gone = true;
  state.bySeq = new Map();
  state.pending = [];
  document.body.replaceChildren();
  document.title = "";
  // replace(): the chat page leaves the history, so Back does not return to it.
  location.replace(EXIT_URL);
}

// -- start -----------------------------------------------------------------------
async function startChat(event) {
  event.preventDefault();
  const form = $("start-form");
  const button = $("start-button");
  const gender = form.elements.gender.value || null;
  const age = $("age").value ? Number($("age").value) : null;
  const message = $("first-message").value.trim() || null;
  // "Vil ikke svare" and no answer are the same: null, nothing is assumed.
  const danger = form.elements.danger.value;
  const inDanger = danger === "yes" ? true : danger === "no" ? false : null;
  button.disabled = true;
  button.textContent = t("starting");
  $("start-error").hidden = true;
  const result = await api("POST", "/api/v1/chats", { body: { gender, age, message, lang: state.lang,
    in_danger: inDanger } });
  button.disabled = false;
  button.textContent = t("startButton");
  if (!result.ok) {
    $("start-error").textContent = result.status === 429 || result.status === 503 ? t("busy") : t("startFailed");
    $("start-error").hidden = false;
    return;
  }
  const data = result.data;
  Object.assign(state, { chatId: data.chat_id, token: data.token, status: data.status, lastSeq: 0,
    inDanger });
  state.queue = { position: data.position, estimated_wait_s: data.estimated_wait_s, notice: data.notice };
  $("first-message").value = "";
  remember();
  openChat();
}

function openChat() {
  $("start").hidden = true;
  $("chat").hidden = false;
  $("ended-box").hidden = true;
  $("composer").hidden = false;
  renderQueue();
  state.live = new Live(state.token, { onEvent, onState }).start();
  sync();
  $("text").focus();
}

// -- keeping up to date --------------------------------------------------------------
// One path for everything that may have been missed: the chat's state, then
// the messages after the last one we have.
function sync() {
  if (state.syncing) return state.syncing;
  state.syncing = (async () => {
    const chat = await api("GET", `/api/v1/chats/${state.chatId}`, { token: state.token });
    // 409: the chat has ended (the token with it); 401/404: it is long gone.
    if (chat.status === 409 || chat.status === 401 || chat.status === 404) {
      forget();
      showEnded(null);
      return;
    }
    if (chat.ok) applyChat(chat.data);
    const result = await api("GET", `/api/v1/chats/${state.chatId}/messages?after=${state.lastSeq}`,
      { token: state.token });
    if (result.ok) for (const message of result.data.messages) addMessage(message, false);
  })().finally(() => { state.syncing = null; });
  return state.syncing;
}

function applyChat(chat) {
  if (chat.counsellor?.name) state.counsellor = chat.counsellor.name;
  const before = state.status;
  state.status = chat.status;
  state.outcome = chat.outcome;
  if (chat.status === "waiting") {
    state.queue = { ...(state.queue || {}), position: chat.position, estimated_wait_s: chat.estimated_wait_s,
      notice: chat.notice };
  }
  if (chat.status === "active" && before !== "active") markDelivered();
  renderQueue();
  renderCounsellor();
  if (isOver()) showEnded(chat.ended_by);
}

function isOver() {
  return ["ended", "abandoned", "timed_out"].includes(state.status);
}

function onState(kind, info) {
  if (state.gone) return;
  const line = $("conn");
  if (kind === "online") {
    if (info?.reconnected) {
      line.textContent = t("back");
      setTimeout(() => { if (line.textContent === t("back")) line.hidden = true; }, 2500);
      sync();
    } else {
      line.hidden = true;
    }
    clearInterval(state.poll);
    state.poll = null;
  } else if (kind === "offline" || kind === "reconnecting") {
    if (isOver()) return;
    line.textContent = t("reconnecting");
    line.hidden = false;
    // While the socket is down, ask now and then, so nothing waits on it.
    if (!state.poll) state.poll = setInterval(() => { if (navigator.onLine) sync(); }, 5000);
  } else if (kind === "unauthorized") {
    sync();
  }
}

function onEvent(name, data) {
  if (state.gone) return;
  if (data.chat_id && data.chat_id !== state.chatId) return;
  if (name === "chat.message") {
    addMessage(data, true);
  } else if (name === "queue.position") {
    if (isOver()) return;
    state.queue = { position: data.position, estimated_wait_s: data.estimated_wait_s, notice: data.notice };
    // Queue changes and assignments reach the gateway on queues of their own, so
    // a place in the queue may be pushed after the chat was taken: never take a
    // talking child back to the queue on a push; ask the server which is true.
    if (state.status !== "waiting") { sync(); return; }
    renderQueue();
  } else if (name === "chat.assigned") {
    state.status = "active";
    state.counsellor = data.counsellor?.name || state.counsellor;
    renderQueue();
    renderCounsellor();
    markDelivered();
  } else if (name === "chat.typing") {
    if (data.sender !== "child") showTyping();
  } else if (name === "chat.ended") {
    state.status = data.status || "ended";
    state.outcome = data.outcome;
    showEnded(data.ended_by);
  }
}

// -- rendering ------------------------------------------------------------------------
function renderQueue() {
  const waiting = state.status === "waiting";
  $("waiting").hidden = !waiting;
  $("queue-bar").hidden = !waiting;
  renderHelpNow(waiting);
  if (!waiting) return;
  const queue = state.queue || {};
  $("queue-text").textContent = queue.position ? t("position", queue.position) : t("inQueue");
  $("wait-text").textContent = queue.estimated_wait_s ? t("wait", queue.estimated_wait_s) : t("waitUnknown");
  const notice = queue.notice;
  // The notice says it plainly; an estimate beside it would only contradict it.
  $("wait-text").hidden = Boolean(notice);
  const box = $("notice");
  if (notice && (notice.message_nb || notice.message_en || t("notices")[notice.code])) {
    // The page's own calm words (the numbers are shown once, below); the server's text otherwise.
    box.textContent = t("notices")[notice.code] ||
      (state.lang === "en" ? notice.message_en : notice.message_nb) || notice.message_nb;
    box.hidden = false;
  } else {
    box.hidden = true;
  }
}

// "Jeg trenger hjelp nå" while waiting: one tap tells the adults (and moves the chat
// up); once said, a calm line instead of the button. Saying it twice changes nothing.
function renderHelpNow(waiting) {
  $("help-now").hidden = !waiting;
  const said = state.inDanger === true;
  $("help-now-button").hidden = said;
  if (said) $("help-now-said").textContent = t("helpSaid");
  else if (!state.helpFailed) $("help-now-said").textContent = "";
  else $("help-now-said").textContent = t("helpFailed");
}

async function helpNow() {
  const button = $("help-now-button");
  if (button.disabled || !state.token || isOver()) return;
  button.disabled = true;
  const result = await api("POST", `/api/v1/chats/${state.chatId}/danger`,
    { token: state.token, body: { in_danger: true } });
  button.disabled = false;
  state.helpFailed = !result.ok;
  if (result.ok) state.inDanger = true;
  renderQueue();
  if (result.ok) $("text").focus({ preventScroll: true });
}

function renderCounsellor() {
  const line = $("counsellor-line");
  line.hidden = state.status !== "active";
  if (!line.hidden) line.textContent = t("connected", state.counsellor);
}

function senderName(sender) {
  if (sender === "child") return t("you");
  if (sender === "counsellor") return state.counsellor || t("adult");
  return "";
}

function addMessage(message, live) {
  if (message.seq <= 0) return;
  state.lastSeq = Math.max(state.lastSeq, message.seq);
  const known = state.bySeq.get(message.seq);
  if (known) {
    if (known.mine && live) setStatus(known, state.status === "active" ? "delivered" : "sent");
    return;
  }
  if (message.sender === "child") {
    // Our own message coming back before its POST answered: adopt the bubble.
    const pending = state.pending.find((item) => !item.seq && item.text === message.text);
    if (pending) {
      pending.seq = message.seq;
      state.bySeq.set(message.seq, pending);
      setStatus(pending, state.status === "active" ? "delivered" : "sent");
      return;
    }
  }
  const item = { seq: message.seq, mine: message.sender === "child", text: message.text,
    kind: message.sender === "system" ? message.kind : null };
  item.el = bubble(message.sender, systemText(item.kind, message.text), message.sent_at);
  state.bySeq.set(message.seq, item);
  const follow = state.stick || item.mine;
  insertInOrder(item);
  if (item.mine) setStatus(item, state.status === "active" ? "delivered" : "sent");
  if (message.sender === "counsellor") {
    hideTyping();
    announce(t("newFrom", senderName("counsellor"), message.text));
  } else if (message.sender === "system" && live) {
    announce(systemText(item.kind, message.text));
  }
  if (follow) scrollDown();
  else if (!state.endedShown) $("new-below").hidden = false;
}

function bubble(sender, text, sentAt) {
  const li = h("li", { class: `msg ${sender}` });
  const name = senderName(sender);
  if (name) li.append(h("span", { class: "who" }, name));
  // Numbers in what the helpline writes become tel: links; the child's own text stays as typed.
  li.append(h("p", { class: "text" }, sender === "child" ? text : linkify(text)));
  const meta = h("span", { class: "meta" });
  if (sentAt) meta.append(h("time", { datetime: sentAt }, clock(sentAt)));
  li.append(meta);
  return li;
}

function insertInOrder(item) {
  const log = $("log");
  item.el.dataset.seq = item.seq || "";
  const after = [...log.children].find((node) => node.dataset.seq && Number(node.dataset.seq) > item.seq);
  if (after) log.insertBefore(item.el, after); else log.append(item.el);
}

function clock(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" :
    date.toLocaleTimeString(state.lang === "en" ? "en-GB" : "nb-NO", { hour: "2-digit", minute: "2-digit" });
}

function setStatus(item, status) {
  if (item.status === "delivered" && status === "sent") return;
  item.status = status;
  renderStatus(item);
}

function renderStatus(item) {
  if (!item.el || !item.status) return;
  const meta = item.el.querySelector(".meta");
  let mark = meta.querySelector(".state");
  if (!mark) {
    mark = h("span", { class: "state" });
    meta.append(mark);
  }
  mark.className = `state ${item.status}`;
  const icon = { sending: "…", sent: "✓", delivered: "✓✓", failed: "!" }[item.status];
  mark.replaceChildren(h("span", { "aria-hidden": "true" }, icon), " ", t(item.status));
  item.el.querySelector(".retry")?.remove();
  if (item.status === "failed" && !isOver()) {
    item.el.append(h("button", { type: "button", class: "retry ghost", onclick: () => send(item) }, t("retry")));
  }
}

function markDelivered() {
  for (const item of state.bySeq.values()) if (item.mine && item.status === "sent") setStatus(item, "delivered");
}

function announce(text) {
  const region = $("announce");
  region.textContent = "";
  // A fresh text node after a tick makes screen readers read it even when repeated.
  setTimeout(() => { region.textContent = text; }, 50);
}

// The message list scrolls by itself, between the top bar and the message box. It
// follows new messages while the child is at the bottom; a child who has scrolled up
// to read is not jumped down but gets a "new message" button.
function atBottom() {
  const box = $("scroller");
  return box.scrollHeight - box.scrollTop - box.clientHeight < 48;
}
function scrollDown() {
  const box = $("scroller");
  box.scrollTop = box.scrollHeight;
  state.stick = true;
  $("new-below").hidden = true;
}

function showTyping() {
  $("typing").textContent = t("typing", state.counsellor);
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(hideTyping, TYPING_SHOWN_MS);
}
function hideTyping() {
  clearTimeout(state.typingTimer);
  $("typing").textContent = "";
}

function showEnded(endedBy) {
  if (state.endedShown) return;
  state.endedShown = true;
  if (!isOver()) state.status = "ended";
  forget();
  if (state.live) state.live.stop();
  clearInterval(state.poll);
  hideTyping();
  $("waiting").hidden = true;
  $("queue-bar").hidden = true;
  $("help-now").hidden = true;
  $("composer").hidden = true;
  $("conn").hidden = true;
  $("counsellor-line").hidden = true;
  state.endedBy = endedBy;
  $("ended-text").textContent = endedText(endedBy);
  $("new-below").hidden = true;
  // A message that failed earlier cannot be sent any more: no "try again" that only fails.
  for (const retry of document.querySelectorAll("#log .retry")) retry.remove();
  const box = $("ended-box");
  box.hidden = false;
  // Show the end, its numbers and buttons: the top of the box at the top of the list.
  state.stick = false;
  $("scroller").scrollTop = Math.max(0, box.offsetTop - 8);
  box.focus({ preventScroll: true });
}

// "Tøm skjermen": the conversation leaves the page (the server keeps its own record).
function clearScreen() {
  $("log").replaceChildren();
  state.bySeq = new Map();
  state.pending = [];
  hideTyping();
  $("counsellor-line").hidden = true;
  forget();
  $("cleared").textContent = t("cleared");
  $("scroller").scrollTop = 0;
}

function endedText(endedBy) {
  if (endedBy === "child" || endedBy === "quick_exit") return t("endedByYou");
  return state.status === "timed_out" || state.outcome === "timed_out" || endedBy === "timeout" ? t("endedQuiet") : t("endedByThem");
}

// -- sending --------------------------------------------------------------------------
async function submitMessage(event) {
  event.preventDefault();
  const box = $("text");
  const text = box.value.trim();
  if (!text || isOver()) return;
  if (text.length > 4000) {
    announce(t("tooLong"));
    return;
  }
  box.value = "";
  autosize();
  const item = { mine: true, text, id: clientId(), seq: null };
  item.el = bubble("child", text, new Date().toISOString());
  item.el.dataset.seq = "";
  $("log").append(item.el);
  state.pending.push(item);
  scrollDown();
  await send(item);
}

// A busy gateway (503 overloaded, 429) says when to come back: the message stays on the
// screen as "sending" and goes again by itself, a few times, before it shows "Try again".
const BUSY_TRIES = 6;

function busyWait(result, tries) {
  // At least what the gateway asks, and longer each time (1, 2, 4 ... 30 s), so a long
  // overload is not made worse by every page coming back each second.
  const asked = Number(result.response?.headers.get("Retry-After"));
  const seconds = Math.min(30, Math.max(Number.isFinite(asked) ? asked : 1, 2 ** (tries - 1)));
  // A little jitter, so children shed together do not all come back in the same instant.
  return seconds * 1000 * (1 + Math.random() * 0.5);
}

async function send(item) {
  setStatus(item, "sending");
  let result;
  for (let tries = 1; ; tries += 1) {
    // The same client_msg_id on a retry: the gateway stores the message once.
    result = await api("POST", `/api/v1/chats/${state.chatId}/messages`,
      { token: state.token, body: { text: item.text, client_msg_id: item.id } });
    if ((result.status !== 503 && result.status !== 429) || tries >= BUSY_TRIES) break;
    await new Promise((resume) => setTimeout(resume, busyWait(result, tries)));
  }
  if (result.ok) {
    state.pending = state.pending.filter((other) => other !== item);
    if (!item.seq) {
      item.seq = result.data.seq;
      const existing = state.bySeq.get(item.seq);
      if (existing && existing !== item) { item.el.remove(); return; }
      state.bySeq.set(item.seq, item);
      item.el.dataset.seq = item.seq;
    }
    setStatus(item, state.status === "active" ? "delivered" : "sent");
  } else if (result.status === 409 || result.status === 401) {
    // The chat has ended and the token with it: say so calmly, keep what is on the screen
    // (the message marked as not sent, with nothing to try again: over first, then the mark).
    if (!isOver()) state.status = "ended";
    setStatus(item, "failed");
    showEnded(null);
  } else {
    setStatus(item, "failed");
  }
}

function typed() {
  autosize();
  const now = Date.now();
  if (state.status !== "active" || now - state.lastTypingSent < TYPING_EVERY_MS) return;
  state.lastTypingSent = now;
  if (state.live?.ready()) state.live.call("typing", {});
  else api("POST", `/api/v1/chats/${state.chatId}/typing`, { token: state.token });
}

function autosize() {
  const box = $("text");
  box.style.height = "auto";
  box.style.height = `${Math.min(box.scrollHeight, 160)}px`;
}

// -- dialogs ----------------------------------------------------------------------------------
// Not showModal(): a modal dialog makes everything else inert, and the quick exit must
// work with one tap while a dialog is open. The main part is made inert instead, and
// the top bar stays above the backdrop.
function openDialogs() {
  return [...document.querySelectorAll("dialog[open]")];
}
function openDialog(dialog) {
  if (dialog.open) return;
  state.opener = document.activeElement;
  dialog.returnValue = "";
  dialog.show();
  $("backdrop").hidden = false;
  $("main").inert = true;
  document.querySelector(".skip").inert = true;
  dialog.querySelector("button")?.focus();
}
function closedDialog() {
  if (state.gone) return;
  if (openDialogs().length) return;
  $("backdrop").hidden = true;
  $("main").inert = false;
  document.querySelector(".skip").inert = false;
  if (state.opener?.isConnected && !state.opener.closest("[hidden]")) state.opener.focus({ preventScroll: true });
  state.opener = null;
}

// Escape closes a dialog; Escape twice in a row is the quick exit.
function onKey(event) {
  if (event.key !== "Escape" || state.gone) return;
  const now = Date.now();
  if (now - (state.lastEscape || 0) < 1500) {
    event.preventDefault();
    quickExit();
    return;
  }
  state.lastEscape = now;
  const open = openDialogs();
  if (open.length) {
    event.preventDefault();
    open.at(-1).close();
  }
}

// -- the visible screen ------------------------------------------------------------------------
// The page is as tall as the visual viewport, so with the on-screen keyboard open the
// message box sits above the keyboard and the top bar stays at the top.
function fitViewport() {
  const root = document.documentElement;
  const viewport = window.visualViewport;
  const apply = () => {
    if (state.gone) return;
    // Pinch-zoomed: the visual viewport is a part of the page, not the screen; use 100dvh.
    if (viewport && Math.abs(viewport.scale - 1) > 0.01) {
      root.style.removeProperty("--app-h");
    } else if (viewport) {
      root.style.setProperty("--app-h", `${Math.round(viewport.height)}px`);
      if (window.scrollY || document.documentElement.scrollTop) window.scrollTo(0, 0);
    }
    root.style.setProperty("--top-h", `${Math.round($("top").getBoundingClientRect().height)}px`);
    if (state.stick && !$("chat").hidden) scrollDown();
  };
  viewport?.addEventListener("resize", apply);
  viewport?.addEventListener("scroll", apply);
  window.addEventListener("resize", apply);
  new ResizeObserver(apply).observe($("top"));
  apply();
}

// -- wiring ---------------------------------------------------------------------------------
function init() {
  const announceRegion = h("div", { id: "announce", class: "visually-hidden", "aria-live": "polite", "aria-atomic": "true" });
  document.body.append(announceRegion);
  const age = $("age");
  for (let year = 5; year <= 25; year += 1) age.append(h("option", { value: year }, year));
  $("quick-exit").addEventListener("click", quickExit);
  $("lang").addEventListener("click", () => {
    state.lang = state.lang === "en" ? "nb" : "en";
    applyLanguage();
    if (state.token && !isOver()) {
      remember();
      // issue 13: the counsellor sees the switch (best effort: the page works without it)
      api("POST", `/api/v1/chats/${state.chatId}/lang`, { token: state.token, body: { lang: state.lang } });
    }
  });
  const emergency = $("emergency");
  const openEmergency = (event) => { event?.preventDefault(); openDialog(emergency); };
  $("show-emergency").addEventListener("click", openEmergency);
  $("emergency-link").addEventListener("click", openEmergency);
  $("start-form").addEventListener("submit", startChat);
  $("composer").addEventListener("submit", submitMessage);
  $("text").addEventListener("input", typed);
  $("text").addEventListener("keydown", (event) => {
    // Enter sends, Shift+Enter is a new line (on a phone's keyboard Enter is a new line too).
    if (event.key === "Enter" && !event.shiftKey && !matchMedia("(pointer: coarse)").matches) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("end").addEventListener("click", () => openDialog($("confirm-end")));
  $("help-now-button").addEventListener("click", helpNow);
  for (const dialog of document.querySelectorAll("dialog")) dialog.addEventListener("close", () => closedDialog(dialog));
  $("backdrop").addEventListener("click", () => openDialogs().forEach((dialog) => dialog.close()));
  document.addEventListener("keydown", onKey);
  $("new-below").addEventListener("click", () => { scrollDown(); $("text").focus({ preventScroll: true }); });
  $("clear-screen").addEventListener("click", clearScreen);
  const scroller = $("scroller");
  // Only the child scrolling up lets go of the bottom; a list that merely changed size
  // (a message arrived, the keyboard opened) keeps following.
  let lastTop = 0;
  scroller.addEventListener("scroll", () => {
    if (state.gone) return;
    const top = scroller.scrollTop;
    if (atBottom()) {
      state.stick = true;
      $("new-below").hidden = true;
    } else if (top < lastTop - 1) {
      state.stick = false;
    }
    lastTop = top;
  }, { passive: true });
  // The list got shorter (the keyboard opened, the message box grew): keep the newest in sight.
  new ResizeObserver(() => { if (state.stick && !state.gone) scrollDown(); }).observe(scroller);
  fitViewport();
  $("confirm-end").addEventListener("close", async () => {
    if ($("confirm-end").returnValue !== "yes") return;
    const result = await api("POST", `/api/v1/chats/${state.chatId}/end`, { token: state.token, body: {} });
    state.status = result.data?.status || "ended";
    showEnded("child");
  });
  $("new-chat").addEventListener("click", () => {
    Object.assign(state, { chatId: null, token: null, status: null, counsellor: null, lastSeq: 0,
      live: null, bySeq: new Map(), pending: [], endedShown: false, endedBy: null, queue: null, stick: true,
      inDanger: null, helpFailed: false });
    for (const input of $("start-form").elements.danger) input.checked = false;
    $("log").replaceChildren();
    $("cleared").textContent = "";
    $("chat").hidden = true;
    $("start").hidden = false;
    $("start-title").focus?.();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && state.token && !isOver()) {
      if (!state.live?.ready()) state.live?.reconnectNow();
      sync();
    }
  });

  let saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(STORE) || "null"); } catch (error) { saved = null; }
  if (saved?.lang === "en" || saved?.lang === "nb") state.lang = saved.lang;
  applyLanguage();
  if (saved?.chat_id && saved?.token) {
    Object.assign(state, { chatId: saved.chat_id, token: saved.token, status: "waiting" });
    openChat();
  }
}

init();
