// Words the console shows: phases, phrases, labels for codes (never a code on screen).


export const STORE = "chatvakt-console";
export const TYPING_EVERY_MS = 3000;
export const TYPING_SHOWN_MS = 5000;
export const PHASES = [
  { code: "opening", label: "Åpning", hint: "Hils og presenter deg med fornavn. Bygg relasjon og tillit – du er arkitekten som hjelper barnet å sortere." },
  { code: "request_and_goal", label: "Bestilling og mål", hint: "Spør etter barnets bestilling og mål: her og nå, og ønsket situasjon etter chatten. Spør – ikke anta (unngå bekreftelsesfella)." },
  { code: "options_for_action", label: "Handlingsalternativer", hint: "Hjelp barnet å finne handlingsalternativer. Avgrens hva dere jobber med i dag." },
  { code: "summary_and_close", label: "Oppsummere og avslutte", hint: "Oppsummer det dere har kommet fram til, og avslutt. Husk koding etterpå." },
];
export const ALWAYS = "Vurder alltid om barnet er i akutt fare for liv og helse.";
export const PHRASES = [
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
export const GENDER = { girl: "Jente", boy: "Gutt", other: "Annet", unspecified: "Ukjent" };
export const KIND = { acute_danger: "Akutt fare", report_of_concern: "Bekymringsmelding", network_contact: "Nettverkskontakt",
  referral: "Henvisning", risk: "Risiko" };
export const PRESENCE = { available: "tilgjengelig", away: "borte", offline: "frakoblet" };
export const WITHDRAWN = { expired: "Tilbudet gikk ut og går videre til en annen.", declined: "Du avslo tilbudet.",
  away: "Tilbudet ble trukket fordi du ikke er tilgjengelig.", cooldown: "Tilbudet ble trukket: du har pause.",
  taken: "Samtalen ble tatt av en annen." };


// -- the console's language (issue 13): Norwegian by default, English on a switch.
// Static text carries data-i18n="key" (data-i18n-label for aria-label); dynamic
// text asks t(key). Keys missing in English fall back to Norwegian, never to a key.
const TEXT = {
  nb: {
    "tab.work": "Samtaler", "tab.stats": "Statistikk", "status": "Status", "capacity": "Kapasitet",
    "logout": "Logg ut", "lang": "English", "mute": "Lyd av", "unmute": "Lyd på", "notify": "Varsler",
    "queue": "Kø", "take-next": "Ta neste", "mine": "Mine samtaler", "uncoded": "Ukodede samtaler",
    "all": "Alle aktive samtaler", "overdue": "Koding på overtid", "escalations": "Eskaleringer og frister",
    "no-chats": "Ingen åpne samtaler. Sett deg som tilgjengelig og ta neste fra køen.",
    "act-code": "Kode", "act-escalate": "Eskaler …", "act-transfer": "Overfør", "act-end": "Avslutt",
    "quick-exit": "Barnet lukket chatten raskt – det er kanskje ikke trygt å kontakte barnet",
    "waited": "Ventet", "lasted": "Varighet", "waits": "Venter", "unfold": "Vis samtalen", "fold": "Legg bort",
    "folded": "Avsluttet og kodet", "transcript": "Samtalen med",
    "not-available": "Du er ikke tilgjengelig, så du kan ikke ta samtaler.",
    "go-available": "Sett meg tilgjengelig og ta samtalen",
    "new-child": "Et barn venter i køen", "long-wait": "Et barn har ventet lenge",
    "child-lang-en": "Barnet bruker engelsk", "child-lang-nb": "Barnet bruker norsk",
    "panel-close": "Lukk panelet", "readback": "Vis det jeg skrev (logges)",
    "readback-note": "Bare for deg, mens samtalen pågår. Hver visning logges.",
    "preview": "Melding til barnet (du kan endre den før den sendes)",
    "send-and-record": "Registrer og send til barnet", "record-only": "Registrer uten å sende",
    "priority.10": "høyere prioritet", "priority.20": "høyeste prioritet",
    "cooldown-until": "Pause til", "cooldown-off": "Pause avbrutt", "ready": "Jeg er klar igjen",
    "cooldown-why": "Etter en samtale med akutt fare får du ingen nye samtaler på en stund. Snakk gjerne med vakthavende.",
    "cooldown-off-why": "Du får nye samtaler igjen. Snakk gjerne med vakthavende likevel.",
    "stats.total_chats": "Samtaler", "stats.answered": "Besvart", "stats.abandoned_share": "Forlatt i kø",
    "stats.coded_share": "Kodet", "stats.answered_within_5min_share": "Svart innen 5 min",
    "stats.at_risk_answered_within_5min_share": "Risiko svart innen 5 min", "stats.wait_p50": "Median ventetid",
    "stats.duration_p50": "Median varighet",
    "stats-suppress": "Tall fra 1 til {n} − 1 vises som «<{n}», her og i CSV-filen: så små tall kan peke ut et barn.",
    "lang-switched": "Barnet byttet språk", "whisper-from": "Hvisking fra vakthavende", "internal-note": "Internt notat",
    "online": "Tilkoblet", "logged-out": "Logget ut", "reconnecting": "Kobler til igjen …",
    // issue 14 (merged from main): the child's own yes, and the hand mark
    "self-report": "Sier selv at hen er i fare nå", "mark-on": "Marker: i fare", "mark-off": "Marker: ikke i fare",
    "mark-why-on": "Hvorfor er barnet i fare? (kort begrunnelse)", "mark-why-off": "Hvorfor er barnet ikke i fare? (kort begrunnelse)",
    "marked-by-hand": "Markert i fare for hånd", "acute": "Akutt fare", "risk": "Risiko", "flags": "Flagg",
    "flagged": "Flagget av risikoskjermen", "detail-transcript": "Samtalen (lesingen logges)",
    "transcript-unavailable": "Samtalen kan ikke vises", "internal": "Internt", "the-child": "Barnet", "counsellor": "Chatvert",
    "no-messages": "Ingen meldinger (slettet etter lagringstiden?).",
  },
  en: {
    "tab.work": "Chats", "tab.stats": "Statistics", "status": "Status", "capacity": "Capacity",
    "logout": "Log out", "lang": "Norsk", "mute": "Sound off", "unmute": "Sound on", "notify": "Alerts",
    "queue": "Queue", "take-next": "Take next", "mine": "My chats", "uncoded": "Chats to code",
    "all": "All active chats", "overdue": "Coding overdue", "escalations": "Escalations and deadlines",
    "no-chats": "No open chats. Set yourself available and take the next from the queue.",
    "act-code": "Code", "act-escalate": "Escalate …", "act-transfer": "Transfer", "act-end": "End",
    "quick-exit": "The child closed the chat quickly – it may not be safe to contact the child",
    "waited": "Waited", "lasted": "Duration", "waits": "Waiting", "unfold": "Show the chat", "fold": "Put away",
    "folded": "Ended and coded", "transcript": "The chat with",
    "not-available": "You are not available, so you cannot take chats.",
    "go-available": "Set me available and take the chat",
    "new-child": "A child is waiting in the queue", "long-wait": "A child has waited a long time",
    "child-lang-en": "The child uses English", "child-lang-nb": "The child uses Norwegian",
    "panel-close": "Close the panel", "readback": "Show what I wrote (logged)",
    "readback-note": "For you only, while the chat lasts. Every read is logged.",
    "preview": "Message to the child (you can change it before it is sent)",
    "send-and-record": "Record and send to the child", "record-only": "Record without sending",
    "priority.10": "higher priority", "priority.20": "highest priority",
    "cooldown-until": "Pause until", "cooldown-off": "Pause ended", "ready": "I am ready again",
    "cooldown-why": "After a chat with acute danger you get no new chats for a while. Talk to the supervisor if you like.",
    "cooldown-off-why": "You get new chats again. Talk to the supervisor all the same if you like.",
    "stats.total_chats": "Chats", "stats.answered": "Answered", "stats.abandoned_share": "Left the queue",
    "stats.coded_share": "Coded", "stats.answered_within_5min_share": "Answered within 5 min",
    "stats.at_risk_answered_within_5min_share": "At risk answered within 5 min", "stats.wait_p50": "Median wait",
    "stats.duration_p50": "Median duration",
    "stats-suppress": "Counts from 1 to {n} − 1 read \u201c<{n}\u201d, here and in the CSV file: numbers that small could single out a child.",
    "lang-switched": "The child switched language", "whisper-from": "Whisper from the supervisor", "internal-note": "Internal note",
    "online": "Connected", "logged-out": "Logged out", "reconnecting": "Reconnecting …",
    "self-report": "Says they are in danger now", "mark-on": "Mark: in danger", "mark-off": "Mark: not in danger",
    "mark-why-on": "Why is the child in danger? (short reason)", "mark-why-off": "Why is the child not in danger? (short reason)",
    "marked-by-hand": "Marked in danger by hand", "acute": "Acute danger", "risk": "Risk", "flags": "Flags",
    "flagged": "Flagged by the risk screen", "detail-transcript": "The chat (reading is logged)",
    "transcript-unavailable": "The chat cannot be shown", "internal": "Internal", "the-child": "The child", "counsellor": "Counsellor",
    "no-messages": "No messages (deleted after the retention period?).",
  },
};
const LANG_STORE = "chatvakt-console-lang";
export const lang = { now: (() => { try { return localStorage.getItem(LANG_STORE) === "en" ? "en" : "nb"; } catch (e) { return "nb"; } })() };
export const t = (key) => TEXT[lang.now][key] ?? TEXT.nb[key] ?? "";
export function applyLanguage() {
  document.documentElement.lang = lang.now === "en" ? "en" : "nb";
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-label]")) node.setAttribute("aria-label", t(node.dataset.i18nLabel));
}
export function switchLanguage() {
  lang.now = lang.now === "en" ? "nb" : "en";
  try { localStorage.setItem(LANG_STORE, lang.now); } catch (e) { /* this tab only */ }
  applyLanguage();
}
// Risk categories of the screen (services/escalation/data/risk_lexicon.yaml), in words.
const RISK_WORDS = {
  nb: { suicide: "Selvmordstanker", self_harm: "Selvskading", violence_home: "Vold i hjemmet",
    sexual_abuse: "Seksuelle overgrep", medical_danger: "Medisinsk fare", self_report: "Sier selv at hen er i fare" },
  en: { suicide: "Suicidal thoughts", self_harm: "Self-harm", violence_home: "Violence at home",
    sexual_abuse: "Sexual abuse", medical_danger: "Medical danger", self_report: "Says they are in danger" },
};
export const riskWords = (code) => (code ? RISK_WORDS[lang.now][code] || RISK_WORDS.nb[code]
  || String(code).replace(/[._]/g, " ") : "");
// Queue priority in words: the risk screen gives 10 (medium) or 20 (high); a
// supervisor may set others, which are put in the nearer band.
export const priorityWords = (priority) => (!priority ? "" : priority >= 20 ? t("priority.20") : t("priority.10"));
// A minute-and-second length, for waits and durations on cards.
export function span(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min` : `${Math.floor(m / 60)} t ${m % 60} min`;
}

// Phone numbers as tel: links: one copy, shared with the child's page.
export { linkify } from "/static/common/tel.js";
