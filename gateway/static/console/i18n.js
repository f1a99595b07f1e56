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

