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
const WORDS = {
  "tab.work": ["Samtaler", "Chats"], "tab.stats": ["Statistikk", "Statistics"], status: ["Status", "Status"],
  capacity: ["Kapasitet", "Capacity"], logout: ["Logg ut", "Log out"], lang: ["English", "Norsk"],
  mute: ["Lyd av", "Sound off"], unmute: ["Lyd på", "Sound on"], notify: ["Varsler", "Alerts"], queue: ["Kø", "Queue"],
  "take-next": ["Ta neste", "Take next"], mine: ["Mine samtaler", "My chats"],
  uncoded: ["Ukodede samtaler", "Chats to code"], all: ["Alle aktive samtaler", "All active chats"],
  overdue: ["Koding på overtid", "Coding overdue"], escalations: ["Eskaleringer og frister", "Escalations and deadlines"],
  "no-chats": ["Ingen åpne samtaler. Sett deg som tilgjengelig og ta neste fra køen.",
    "No open chats. Set yourself available and take the next from the queue."],
  "act-code": ["Kode", "Code"], "act-escalate": ["Eskaler …", "Escalate …"], "act-transfer": ["Overfør", "Transfer"],
  "act-end": ["Avslutt", "End"],
  "quick-exit": ["Barnet lukket chatten raskt – det er kanskje ikke trygt å kontakte barnet",
    "The child closed the chat quickly – it may not be safe to contact the child"],
  waited: ["Ventet", "Waited"], lasted: ["Varighet", "Duration"], waits: ["Venter", "Waiting"],
  unfold: ["Vis samtalen", "Show the chat"], fold: ["Legg bort", "Put away"],
  folded: ["Avsluttet og kodet", "Ended and coded"], transcript: ["Samtalen med", "The chat with"],
  "not-available": ["Du er ikke tilgjengelig, så du kan ikke ta samtaler.",
    "You are not available, so you cannot take chats."],
  "go-available": ["Sett meg tilgjengelig og ta samtalen", "Set me available and take the chat"],
  "new-child": ["Et barn venter i køen", "A child is waiting in the queue"],
  "long-wait": ["Et barn har ventet lenge", "A child has waited a long time"],
  "child-lang-en": ["Barnet bruker engelsk", "The child uses English"],
  "child-lang-nb": ["Barnet bruker norsk", "The child uses Norwegian"],
  "panel-close": ["Lukk panelet", "Close the panel"],
  readback: ["Vis det jeg skrev (logges)", "Show what I wrote (logged)"],
  "readback-note": ["Bare for deg, mens samtalen pågår. Hver visning logges.",
    "For you only, while the chat lasts. Every read is logged."],
  preview: ["Melding til barnet (du kan endre den før den sendes)",
    "Message to the child (you can change it before it is sent)"],
  "send-and-record": ["Registrer og send til barnet", "Record and send to the child"],
  "record-only": ["Registrer uten å sende", "Record without sending"],
  "priority.10": ["høyere prioritet", "higher priority"], "priority.20": ["høyeste prioritet", "highest priority"],
  "cooldown-until": ["Pause til", "Pause until"], "cooldown-off": ["Pause avbrutt", "Pause ended"],
  ready: ["Jeg er klar igjen", "I am ready again"],
  "cooldown-why": ["Etter en samtale med akutt fare får du ingen nye samtaler på en stund. Snakk gjerne med vakthavende.",
    "After a chat with acute danger you get no new chats for a while. Talk to the supervisor if you like."],
  "cooldown-off-why": ["Du får nye samtaler igjen. Snakk gjerne med vakthavende likevel.",
    "You get new chats again. Talk to the supervisor all the same if you like."],
  "stats.total_chats": ["Samtaler", "Chats"], "stats.answered": ["Besvart", "Answered"],
  "stats.abandoned_share": ["Forlatt i kø", "Left the queue"], "stats.coded_share": ["Kodet", "Coded"],
  "stats.answered_within_5min_share": ["Svart innen 5 min", "Answered within 5 min"],
  "stats.at_risk_answered_within_5min_share": ["Risiko svart innen 5 min", "At risk answered within 5 min"],
  "stats.wait_p50": ["Median ventetid", "Median wait"], "stats.duration_p50": ["Median varighet", "Median duration"],
  "stats-suppress": ["Tall fra 1 til {n} − 1 vises som «<{n}», her og i CSV-filen: så små tall kan peke ut et barn.",
    "Counts from 1 to {n} − 1 read “<{n}”, here and in the CSV file: numbers that small could single out a child."],
  "lang-switched": ["Barnet byttet språk", "The child switched language"],
  "whisper-from": ["Hvisking fra vakthavende", "Whisper from the supervisor"],
  "internal-note": ["Internt notat", "Internal note"], online: ["Tilkoblet", "Connected"],
  "logged-out": ["Logget ut", "Logged out"], reconnecting: ["Kobler til igjen …", "Reconnecting …"],
  "self-report": ["Sier selv at hen er i fare nå", "Says they are in danger now"],
  "mark-on": ["Marker: i fare", "Mark: in danger"], "mark-off": ["Marker: ikke i fare", "Mark: not in danger"],
  "mark-why-on": ["Hvorfor er barnet i fare? (kort begrunnelse)", "Why is the child in danger? (short reason)"],
  "mark-why-off": ["Hvorfor er barnet ikke i fare? (kort begrunnelse)", "Why is the child not in danger? (short reason)"],
  "marked-by-hand": ["Markert i fare for hånd", "Marked in danger by hand"], acute: ["Akutt fare", "Acute danger"],
  risk: ["Risiko", "Risk"], flags: ["Flagg", "Flags"],
  flagged: ["Flagget av risikoskjermen", "Flagged by the risk screen"],
  "detail-transcript": ["Samtalen (lesingen logges)", "The chat (reading is logged)"],
  "transcript-unavailable": ["Samtalen kan ikke vises", "The chat cannot be shown"], internal: ["Internt", "Internal"],
  "the-child": ["Barnet", "The child"], counsellor: ["Chatvert", "Counsellor"],
  "no-messages": ["Ingen meldinger (slettet etter lagringstiden?).", "No messages (deleted after the retention period?)."],
  // the login page, the role pill, the alert banners (issue 13: all of it follows the switch)
  skip: ["Hopp til samtalene", "Skip to the chats"], "login.title": ["chatvakt – veilederkonsoll", "chatvakt – counsellor console"],
  "login.lead": ["Logg inn som chatvert eller vakthavende.", "Log in as a counsellor or a supervisor."],
  "login.user": ["Brukernavn", "Username"], "login.password": ["Passord", "Password"], "login.submit": ["Logg inn", "Log in"],
  "login.wrong": ["Feil brukernavn eller passord.", "Wrong username or password."],
  "role.supervisor": ["vakthavende", "supervisor"], "role.counsellor": ["chatvert", "counsellor"],
  "alert.acute": ["⚠ AKUTT", "⚠ ACUTE"], "alert.risk": ["⚠ Risiko", "⚠ Risk"], "alert.open": ["Åpne samtalen", "Open the chat"],
  "alert.ack": ["Kvitter", "Acknowledge"], "alert.raised": ["Løftet til alle vakthavende", "Raised to every supervisor"],
  // the browser tab's title (issue 13: it follows the switch too)
  "title.idle": ["chatvakt – konsoll", "chatvakt – console"], "title.alert": ["VARSEL", "ALERT"],
  matched: ["treff", "matched"],
};
const TEXT = { nb: {}, en: {} };
for (const [key, [nb, en]] of Object.entries(WORDS)) { TEXT.nb[key] = nb; TEXT.en[key] = en; }
const LANG_STORE = "chatvakt-console-lang";
export const lang = { now: (() => { try { return localStorage.getItem(LANG_STORE) === "en" ? "en" : "nb"; } catch (e) { return "nb"; } })() };
export const t = (key) => TEXT[lang.now][key] ?? TEXT.nb[key] ?? "";
export function applyLanguage() {
  document.documentElement.lang = lang.now === "en" ? "en" : "nb";
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-label]")) node.setAttribute("aria-label", t(node.dataset.i18nLabel));
  applyTr();
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
// A category of the coding tree in the console's language: the server sends both labels.
export const categoryName = (entry) => (lang.now === "en" ? entry.label_en : entry.label_nb) || entry.label || entry.code;
// serverWords: the server's own "Selvmordsfare / suicide risk" for a category
// this table does not know; the half in the console's language is shown.
export function riskWords(code, serverWords) {
  if (!code) return "";
  const known = RISK_WORDS[lang.now][code] || RISK_WORDS.nb[code];
  if (known) return known;
  const [nb, en] = String(serverWords || "").split(" / ");
  const words = lang.now === "en" && en ? en.charAt(0).toUpperCase() + en.slice(1) : nb;
  return words || String(code).replace(/[._]/g, " ");
}
// A reason as the server writes it (services/escalation/risk.py reason_text):
// "Selvmordsfare / suicide risk — matched: ønske om å dø", several joined by "; ",
// the learned screen's with " (p=0.91)" after, the child's own "Sier selv … (says …)".
// The half in the console's language is shown; the stored reason is not changed.
// What the screen matched is its own Norwegian topic words, shown as they are.
export function reasonWords(reason) {
  if (!reason) return "";
  return String(reason).split("; ").map((part) => {
    const pair = part.match(/^(.+?) \/ (.+?)((?: — matched: | \(p=).*)?$/);
    const tail = (rest) => (rest || "").replace(" — matched: ", ` — ${t("matched")}: `);
    if (pair) return `${lang.now === "en" ? pair[2].charAt(0).toUpperCase() + pair[2].slice(1) : pair[1]}${tail(pair[3])}`;
    const aside = part.match(/^([^()]+) \(([^()=]+)\)$/);
    if (aside) return lang.now === "en" ? aside[2].charAt(0).toUpperCase() + aside[2].slice(1) : aside[1];
    return part;
  }).join("; ");
}
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

// -- issue 13: the rest of the console in English ------------------------------------
// Offers, the queue row, escalation forms, the coding dialog, deadlines, phases, ready
// phrases and event notes. Their Norwegian text is the key, so the long field
// descriptions (escalation.js) and the markup keep reading as Norwegian; tr() gives
// the English when it is chosen and the Norwegian otherwise (never a key).
// {name} in a text is filled from `vars`. Static markup carries data-tr.
const EN = {
  // phases, the reminder under them, and ready phrases (the child reads these in English)
  "Åpning": "Opening", "Bestilling og mål": "Request and goal", "Handlingsalternativer": "Options for action",
  "Oppsummere og avslutte": "Summarise and close",
  "Hils og presenter deg med fornavn. Bygg relasjon og tillit – du er arkitekten som hjelper barnet å sortere.":
    "Greet and introduce yourself by first name. Build rapport and trust – you are the architect helping the child sort things out.",
  "Spør etter barnets bestilling og mål: her og nå, og ønsket situasjon etter chatten. Spør – ikke anta (unngå bekreftelsesfella).":
    "Ask for the child's request and goal: here and now, and how they want things after the chat. Ask – do not assume (avoid the confirmation trap).",
  "Hjelp barnet å finne handlingsalternativer. Avgrens hva dere jobber med i dag.":
    "Help the child find options for action. Narrow down what you work on today.",
  "Oppsummer det dere har kommet fram til, og avslutt. Husk koding etterpå.":
    "Summarise what you have arrived at, and close. Remember coding afterwards.",
  "Vurder alltid om barnet er i akutt fare for liv og helse.": "Always assess whether the child's life or health is in acute danger.",
  "Hilsen": "Greeting", "Presenter deg": "Introduce yourself", "Hjelpe": "Help", "Bestilling": "Request", "Utdype": "More",
  "Akutt fare": "Acute danger", "Voksen": "Adult", "Alternativer": "Options", "Oppsummere": "Summarise", "Avslutte": "Close",
  "Hei, velkommen til Alarmtelefonen. Hva ønsker du å snakke med oss om?": "Hi, welcome to Alarmtelefonen. What would you like to talk to us about?",
  "Hei, jeg heter {first}.": "Hi, my name is {first}.",
  "Hva kan jeg hjelpe deg med?": "What can I help you with?",
  "Hva ønsker du å sitte igjen med etter samtalen i dag?": "What would you like to take away from our chat today?",
  "Kan du fortelle litt mer om det?": "Can you tell me a bit more about that?",
  "Er du i fare akkurat nå? Er du trygg der du er?": "Are you in danger right now? Are you safe where you are?",
  "Er det en voksen du stoler på som du kan snakke med om dette?": "Is there an adult you trust whom you can talk to about this?",
  "Hva tenker du kan være lurt å gjøre videre?": "What do you think might be a good next step?",
  "Hvis jeg skal oppsummere det vi har snakket om: ": "If I sum up what we have talked about: ",
  "Du er alltid velkommen til å ta kontakt igjen. Vi er her hele døgnet på chat og på 116 111.":
    "You are always welcome to contact us again. We are here day and night on chat and on 116 111.",
  "– velg –": "– choose –", "Ferdige fraser": "Ready phrases", "Til barnet": "To the child", "Internt notat": "Internal note",
  "Hvisk til chatverten": "Whisper to the counsellor", "ingen": "nobody", "Risiko": "Risk",
  // the queue row, offers, presence, reminders
  "Tilbud: {who}": "Offer: {who}", "Ta samtalen": "Take the chat", "Avslå": "Decline", "Ta": "Take", "Ta {who}": "Take {who}",
  "Tilbudet gjelder ikke lenger.": "The offer no longer applies.", "Tilbudet ble trukket.": "The offer was withdrawn.",
  "Tilbudet gikk ut og går videre til en annen.": "The offer ran out and passes to someone else.", "Du avslo tilbudet.": "You declined the offer.",
  "Tilbudet ble trukket fordi du ikke er tilgjengelig.": "The offer was withdrawn because you are not available.",
  "Tilbudet ble trukket: du har pause.": "The offer was withdrawn: you are on a pause.",
  "Samtalen ble tatt av en annen.": "Someone else took the chat.",
  "svar innen {n} s": "answer within {n} s", "{mine} av {cap} samtaler": "{mine} of {cap} chats",
  "tilgjengelig veileder": "available counsellor", "tilgjengelige veiledere": "available counsellors",
  "{person} har pause til {until}.": "{person} is on a pause until {until}.", "{person} er klar igjen.": "{person} is ready again.",
  "Ingen venter i køen.": "Nobody is waiting in the queue.",
  "Mulig flom: {n} mistenkelige samtaler fra {sources} {kind} siden {at} (betjenes sist)":
    "Possible flood: {n} suspect chats from {sources} {kind} since {at} (served last)", "kilde": "source", "kilder": "sources",
  "aktiv": "active", "venter": "waiting", "avsluttet": "ended", "forlatt": "left", "avsluttet (stille lenge)": "ended (silent a long time)",
  "avsluttet (rask utgang)": "ended (quick exit)", "Lagre notat": "Save note", "Hvisk": "Whisper", "Send": "Send",
  "Internt notat – barnet ser det ikke": "Internal note – the child does not see it", "Bare chatverten ser dette": "Only the counsellor sees this",
  "Skriv til barnet …": "Write to the child …", "{who} skriver …": "{who} is writing …",
  "Alt er kodet.": "Everything is coded.", "Ingen aktive samtaler.": "No active chats.", "{n} nye": "{n} new", "Kan ikke ta samtalen: {why}": "Cannot take the chat: {why}",
  "du har nådd kapasiteten din, har pause eller er ikke tilgjengelig.": "you have reached your capacity, are on a pause or are not available.",
  "Påminnelse": "Reminder", "Siste påminnelse": "Last reminder", "samtale er": "chat is", "samtaler er": "chats are",
  "{kind}: {count} {are} ikke kodet.": "{kind}: {count} {are} not coded.", " Vakthavende får beskjed.": " The supervisor is told.",
  "Fulgt opp": "Followed up", "Ingen.": "None.", "ukodet": "uncoded", "Tilgjengelig": "Available", "Borte": "Away", "Frakoblet": "Offline",
  // deadlines
  "{n} døgn": "{n} days", "{n} t": "{n} h", "Frist passert for {text} siden": "Deadline passed {text} ago",
  "Frist om {text} ({at})": "Deadline in {text} ({at})",
  // event notes
  "Endret av en annen: {status}.": "Changed by someone else: {status}.", "Akutt fare registrert": "Acute danger recorded",
  // the coding dialog
  "Koding": "Coding", "Bekymringsmelding": "Report of concern", "Nettverkskontakt": "Network contact", "Henvisning": "Referral",
  "Se og hvisk": "Watch and whisper", " (ser på)": " (watching)", "Versjon {v}": "Version {v}", " (rettelse)": " (correction)", "Kjønn": "Gender", "Alder": "Age", "Inn": "In", "Ut": "Out", "Type henvendelse": "Kind of contact",
  "Jente": "Girl", "Gutt": "Boy", "Annet": "Other", "Ukjent / ikke oppgitt": "Unknown / not given", "Ukjent": "Unknown",
  "Barnet om seg selv": "The child about themselves", "Om et annet barn": "About another child", "Stille (skrev ikke)": "Silent (did not write)",
  "Forlot chatten": "Left the chat", "Sjikane": "Abuse", "Tester tjenesten": "Testing the service", "Takk": "Thanks",
  "Bare informasjon": "Information only", "Veileder (navn)": "Counsellor (name)",
  "Alarmtelefonen skal alltid vurdere om barnet er i en akutt situasjon der det er fare for liv og helse.":
    "Alarmtelefonen must always assess whether the child is in an acute situation with danger to life and health.",
  "Jeg har vurdert akutt fare": "I have assessed acute danger", "Ikke akutt fare": "No acute danger", "Kategorier": "Categories",
  "Husk:": "Remember:",
  " underkategori er primærkategori. Hovedkategori brukes KUN dersom ingen underkategori passer. Den første i listen er primærkoden.":
    " a subcategory is the primary category. A main category is used ONLY when no subcategory fits. The first in the list is the primary code.",
  "Søk i kategoriene": "Search the categories", "f.eks. mobbing": "e.g. bullying", "Merknad (ingen personopplysninger)": "Note (no personal data)",
  "Tidligere versjoner": "Earlier versions", "Tidligere versjoner ({n})": "Earlier versions ({n})", "Avbryt": "Cancel", "Lagre koding": "Save coding",
  "Chat {id} · {state}": "Chat {id} · {state}", "kodet tidligere – du endrer kodingen": "coded before – you are changing the coding",
  "ikke kodet ennå": "not coded yet", "valgt": "chosen", "Bare hovedkategori: {label} (kun når ingen underkategori passer)":
    "Main category only: {label} (only when no subcategory fits)",
  "Primær: ": "Primary: ", "Gjør primær": "Make primary", "Fjern": "Remove", "Fjern {label}": "Remove {label}",
  "Ingen kategori valgt ennå.": "No category chosen yet.", "Kodingen er ikke gyldig – se merknadene over.": "The coding is not valid – see the notes above.",
  "Kodet ✓": "Coded ✓",
  "Du har valgt både hovedkategorien og underkategorien «{sub}». Underkategori er primærkategori – fjern hovedkategorien. Hovedkategori brukes kun når ingen underkategori passer.":
    "You chose both the main category and its subcategory \u201c{sub}\u201d. The subcategory is the primary category – remove the main category. A main category is used only when no subcategory fits.",
  // escalation forms
  "Eskaler": "Escalate", "Hva vil du gjøre?": "What do you want to do?", "Akutt fare – sjekkliste": "Acute danger – checklist",
  "Bekymringsmelding til barnevernet": "Report of concern to child welfare", "Kontakt med offentlig/privat nettverk": "Contact with public/private network",
  "Informere om annen tjeneste": "Tell about another service", "Registrer": "Record",
  "Hva skjer? (kort)": "What is happening? (short)", "Hvor er barnet? (om barnet vil si det)": "Where is the child? (if the child will say)",
  "Nødetat kontaktet": "Emergency service contacted", "– ikke ennå –": "– not yet –", "Politi 112": "Police 112", "Ambulanse 113": "Ambulance 113",
  "Brann 110": "Fire 110", "Legevakt 116 117": "Out-of-hours doctor 116 117", "Politiet 02800": "Police 02800", "Ringt (tidspunkt)": "Called (time)",
  "Ringt av": "Called by", "Utfall": "Outcome", "Merknad": "Note", "Barnets navn (om kjent)": "The child's name (if known)",
  "Skole / barnehage": "School / kindergarten", "Adresse / sted": "Address / place", "Foresatte": "Guardians", "– ikke oppgitt –": "– not given –",
  "Hva er det konkret som gir bekymring?": "What specifically causes concern?", "Eksempler (ett per linje)": "Examples (one per line)",
  "Når ble det observert / fortalt?": "When was it observed / told?", "Én gang eller over tid?": "Once or over time?", "Én gang": "Once",
  "Over tid": "Over time", "Vet ikke": "Do not know", "Andre det gjelder (søsken o.l.)": "Others concerned (siblings etc.)",
  "Hvem andre kan vite noe?": "Who else may know something?", "Til barneverntjenesten i (kommune)": "To the child welfare service in (municipality)",
  "Melder (navn)": "Reporter (name)", "Meldes anonymt": "Reported anonymously", "Sendt via": "Sent via", "Digitalt": "Digitally", "E-post": "Email",
  "Post": "Post", "Telefon": "Phone", "Barnevernets referanse": "Child welfare's reference", "Svar fra barnevernet": "Reply from child welfare",
  "Intern merknad": "Internal note", "Hvem kontaktes?": "Who is contacted?", "Annen (hvem)": "Other (who)", "Barnets samtykke": "The child's consent",
  "Barnet er enig": "The child agrees", "Barnet vil ikke": "The child does not want it", "Ikke spurt": "Not asked",
  "Ikke nødvendig (fare)": "Not needed (danger)", "Om samtykket": "About the consent", "Kontaktperson": "Contact person", "Virksomhet": "Organisation",
  "Kontaktet (tidspunkt)": "Contacted (time)", "Kontaktet av": "Contacted by", "Hva skal formidles / merknad": "What to pass on / note",
  "Tjenester barnet er informert om": "Services the child was told about", "Forelder / foresatt": "Parent / guardian", "Skole / lærer": "School / teacher",
  "Helsesykepleier": "School nurse", "Lege": "Doctor", "Politi": "Police", "Annen": "Other",
  "Spør om barnet er trygt akkurat nå.": "Ask whether the child is safe right now.",
  "Avklar hvor barnet er, om barnet vil si det.": "Find out where the child is, if the child will say.",
  "Avklar om det er en trygg voksen i nærheten.": "Find out whether a safe adult is nearby.",
  "Kontakt nødetat ved behov – og bli i chatten til hjelpen er der.": "Contact the emergency services if needed – and stay in the chat until help is there.",
  "Vakthavende varsles når du registrerer.": "The supervisor is alerted when you record.",
  "Utkastet fylles ut med det samtalen og kodingen sier.": "The draft is filled in with what the chat and the coding say.",
  "Vakthavende godkjenner før det sendes.": "The supervisor approves before it is sent.",
  "Barnevernet skal vurdere meldingen innen en uke.": "Child welfare must assess the report within a week.",
  "Spør barnet om samtykke før du kontakter noen, med mindre barnet er i fare.": "Ask the child's consent before you contact anyone, unless the child is in danger.",
  "Velg tjenestene du har fortalt barnet om.": "Choose the services you told the child about.",
  "Registrer akutt fare og varsle vakthavende": "Record acute danger and alert the supervisor", "Lagre utkast": "Save draft",
  "Registrer kontakt": "Record contact", "Registrer henvisning": "Record referral",
  "åpen": "open", "nødetat kontaktet": "emergency service contacted", "lukket": "closed", "utkast": "draft", "godkjent": "approved",
  "sendt": "sent", "mottak bekreftet": "receipt confirmed", "kontaktet": "contacted", "registrert": "recorded",
  "Godkjenn": "Approve", "Tilbake til utkast": "Back to draft", "Marker som sendt": "Mark as sent",
  "Barnevernet har bekreftet mottak": "Child welfare confirmed receipt", "Lukk saken": "Close the case", "Nødetat er kontaktet": "Emergency service contacted",
  "Kontakt er tatt": "Contact made", "Lagret – bare vakthavende ser det": "Stored – only the supervisor sees it",
  "Identifiserende: bare vakthavende kan lese det": "Identifying: only the supervisor can read it",
  "Ikke mulig nå: {why}": "Not possible now: {why}", "feil tilstand": "wrong state",
  "Noe mangler eller er ugyldig: {why} Se merknadene ved feltene.": "Something is missing or invalid: {why} See the notes by the fields.",
  "Ikke tillatt: {why}": "Not allowed: {why}", "Utkastet er lagret.": "The draft is saved.", "Registrert.": "Recorded.",
  "Åpnet {at}": "Opened {at}", " · venter på godkjenning": " · awaiting approval", "Åpne": "Open", "Ingen åpne eskaleringer.": "No open escalations.",
  "Opprettet": "Created", "Sist endret": "Last changed", "Sendt": "Sent",
  "Barnevernet skal vurdere meldingen innen {n} dager. ": "Child welfare must assess the report within {n} days. ",
  "Vakthavende godkjenner meldingen før den sendes. Fyll ut det du vet; årsak, tidspunkt og varighet må være med.":
    "The supervisor approves the report before it is sent. Fill in what you know; cause, time and duration must be there.",
  "Godkjent: innholdet er låst. Send meldingen (last ned PDF), og marker den som sendt.":
    "Approved: the content is locked. Send the report (download the PDF), and mark it as sent.",
  "Identifiserende opplysninger er lagret kryptert og vises bare for vakthavende.": "Identifying details are stored encrypted and shown only to the supervisor.",
  "Ingen endringer å lagre.": "No changes to save.", "Status: {status}.": "Status: {status}.", "Endringene er lagret.": "The changes are saved.",
  "Bare vakthavende kan laste ned meldingen.": "Only the supervisor can download the report.", "Kunne ikke hente PDF ({status}).": "Could not fetch the PDF ({status}).",
  "Eskalering": "Escalation", "Historikk": "History", "Tilgangslogg": "Access log", "Last ned PDF": "Download PDF", "Lagre endringer": "Save changes",
  "Lukk": "Close", "Neste steg": "Next step", "Overfør samtalen": "Transfer the chat", "Til veileder": "To counsellor",
  "Notat til kollegaen (barnet ser det ikke)": "Note to the colleague (the child does not see it)", "Overfør": "Transfer",
  "Hvor er barnet": "Where the child is", "Barnet": "The child", "Samtalen er over: spør vakthavende.": "The chat is over: ask the supervisor.",
  "Det du skrev (bare for deg, logget):": "What you wrote (for you only, logged):", "Eskaleringer i denne samtalen": "Escalations in this chat",
  "Samtalemodellen": "The conversation model", "Ukodede samtaler": "Chats to code", "Alle aktive samtaler": "All active chats",
  "Koding på overtid": "Coding overdue", "Eskaleringer og frister": "Escalations and deadlines",
  "Vi koder hver chat: navn, kjønn, inn og ut, kategori.": "We code every chat: name, gender, in and out, category.",
  // the role pill's title, alert banners, the referral message to the child
  "Din id: {id}": "Your id: {id}", "Ikke kvittert – varslet {n}. gang": "Not acknowledged – alert number {n}",
  "Ikke kvittert: {why}": "Not acknowledged: {why}", "Du kan også ta kontakt med:": "You can also contact:",
  // the statistics screen and its charts
  "Fra": "From", "Til og med": "To and including", "Vis": "Show", "Last ned CSV": "Download CSV",
  "Samtaler etter hovedkategori (primærkode)": "Chats by main category (primary code)",
  "Samtaler etter hovedkategori": "Chats by main category", "De vanligste underkategoriene": "The most common subcategories",
  "Samtaler per time og ukedag (Europe/Oslo)": "Chats by hour and weekday (Europe/Oslo)",
  "Samtaler per time og ukedag": "Chats by hour and weekday", "Ventetid før svar": "Wait before an answer",
  "Kjønn og alder": "Gender and age", "Kjønn og aldersgruppe": "Gender and age group", "Ventetid": "Wait",
  "Ventetid, persentiler": "Wait, percentiles", "Ingen kodede underkategorier i perioden.": "No coded subcategories in the period.",
  "Ikke kodet": "Not coded", "ukjent alder": "age unknown", "{age} år": "{age} years",
  "Kunne ikke laste ned CSV ({status}).": "Could not download the CSV ({status}).",
  "gjelder": "item", "antall": "count", "dag": "day", "kl {h}": "at {h}", "{day} kl. {h}: {n}": "{day} at {h}: {n}",
  "Mørkere = flere samtaler (høyest: {n})": "Darker = more chats (highest: {n})",
  "man": "Mon", "tir": "Tue", "ons": "Wed", "tor": "Thu", "fre": "Fri", "lør": "Sat", "søn": "Sun",
  "median": "median", "lengst": "longest", "ventetid": "wait", "besvart": "answered", "forlatt": "left",
  "besvart (n={n})": "answered (n={n})", "forlatt i kø (n={n})": "left the queue (n={n})",
  "Listen over alle samtaler er ikke tilgjengelig.": "The list of all chats is not available.",
};
// "Norsk / english", as the server writes a reason: kept on a chat's flags, so the
// card shows the half of whichever language the console has at the time (reasonWords).
export function bothLanguages(nb) {
  const en = EN[nb] ?? TEXT.en[nb];
  const no = TEXT.nb[nb] ?? nb;
  return en ? `${no} / ${en.charAt(0).toLowerCase()}${en.slice(1)}` : no;
}
export function tr(nb, vars) {
  let text = lang.now === "en" ? EN[nb] ?? nb : nb;
  if (vars) text = text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
  return text;
}
// Markup with data-tr keeps its Norwegian in data-nb, so a switch back restores it.
export function applyTr(root = document) {
  for (const node of root.querySelectorAll("[data-tr]")) {
    if (node.dataset.nb === undefined) node.dataset.nb = node.dataset.tr || node.textContent;
    node.textContent = tr(node.dataset.nb);
  }
  for (const node of root.querySelectorAll("[data-tr-label]")) node.setAttribute("aria-label", tr(node.dataset.trLabel));
  for (const node of root.querySelectorAll("[data-tr-placeholder]")) node.placeholder = tr(node.dataset.trPlaceholder);
}
