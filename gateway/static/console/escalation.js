// Escalations: raising one beside the chat, and working it to its end.
import { download, h } from "/static/common/net.js";
import { KIND, bothLanguages, lang, t, tr, linkify } from "/static/console/i18n.js";
import { $, state, supervisor, who, short, dateTime, call, problem } from "/static/console/api.js";
import { tick } from "/static/console/lists.js";
import { renderCard, syncChat } from "/static/console/chatcard.js";
import { toLocalInput, fromLocalInput } from "/static/console/coding.js";

// -- escalations ----------------------------------------------------------------------
// One description of each kind's details (services/escalation/domain.py) drives
// both the form that raises an escalation and the one that works it to its end.
// id: where the value lives in `details` ("person.name" is details.person.name).
export const CONTACTS = [["parent", "Forelder / foresatt"], ["school", "Skole / lærer"], ["school_nurse", "Helsesykepleier"],
  ["doctor", "Lege"], ["police", "Politi"], ["other", "Annen"]];
export const FIELDS = {
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
export const GUIDE = {
  acute_danger: ["Spør om barnet er trygt akkurat nå.", "Avklar hvor barnet er, om barnet vil si det.",
    "Avklar om det er en trygg voksen i nærheten.", "Kontakt nødetat ved behov – og bli i chatten til hjelpen er der.",
    "Vakthavende varsles når du registrerer."],
  report_of_concern: ["Utkastet fylles ut med det samtalen og kodingen sier.", "Vakthavende godkjenner før det sendes.",
    "Barnevernet skal vurdere meldingen innen en uke."],
  network_contact: ["Spør barnet om samtykke før du kontakter noen, med mindre barnet er i fare."],
  referral: ["Velg tjenestene du har fortalt barnet om."],
};
export const ESC_STATUS = { open: "åpen", emergency_contacted: "nødetat kontaktet", closed: "lukket", draft: "utkast",
  approved: "godkjent", sent: "sendt", acknowledged: "mottak bekreftet", contacted: "kontaktet", recorded: "registrert" };
export const MOVES = { approved: "Godkjenn", draft: "Tilbake til utkast", sent: "Marker som sendt",
  acknowledged: "Barnevernet har bekreftet mottak", closed: "Lukk saken", emergency_contacted: "Nødetat er kontaktet",
  contacted: "Kontakt er tatt" };
export const SAVE_LABEL = { acute_danger: "Registrer akutt fare og varsle vakthavende", report_of_concern: "Lagre utkast",
  network_contact: "Registrer kontakt", referral: "Registrer henvisning" };

export const getPath = (obj, path) => path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
export function setPath(obj, path, value) {
  const keys = path.split(".");
  let at = obj;
  for (const key of keys.slice(0, -1)) at = at[key] ??= {};
  at[keys.at(-1)] = value;
}
export const fieldKey = (id) => `details.${id}`;

// Build the inputs of one kind into `box`; returns a function that gives the
// changed values as a details patch (null removes a field).
export function buildFields(box, kind, { values = {}, editable = () => true, create = false, stored = [] } = {}) {
  const inputs = [];
  const nodes = [];
  for (const field of FIELDS[kind] || []) {
    if (create && (field.later || field.tracking && field.id !== "note")) continue;
    const id = `${box.id}-${field.id.replace(/\W/g, "_")}`;
    const initial = getPath(values, field.id);
    let input;
    if (field.type === "select") {
      input = h("select", { id }, field.options.map(([value, label]) => h("option", { value }, tr(label))));
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
    if (hidden) input.placeholder = tr("Lagret – bare vakthavende ser det");
    input.disabled = !editable(field);
    const start = readField(field, input);
    inputs.push({ field, input, start });
    const label = h("label", { for: id }, tr(field.label), field.identifying ? h("span", { class: "pill ident", title: tr("Identifiserende: bare vakthavende kan lese det") }, "ID") : null);
    const error = h("p", { class: "error small", "data-field": fieldKey(field.id) });
    nodes.push(field.type === "checkbox"
      ? h("div", { class: field.wide ? "wide" : "" }, h("label", { for: id }, input, ` ${tr(field.label)}`), error)
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
export function readField(field, input) {
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
export function showFieldErrors(box, result) {
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
export function statusMessage(result) {
  const message = result.data?.error?.message;
  if (result.status === 409) return tr("Ikke mulig nå: {why}", { why: message || tr("feil tilstand") });
  if (result.status === 422) return tr("Noe mangler eller er ugyldig: {why} Se merknadene ved feltene.", { why: message || "" });
  if (result.status === 403) return tr("Ikke tillatt: {why}", { why: message || "" });
  return problem(result);
}

// Escalation forms open as a panel beside the chats (a non-modal dialog): the
// child's next message arrives in sight while the counsellor fills the form.
export function openPanel(id) {
  for (const other of ["escalate-dialog", "detail-dialog"]) {
    if (other !== id && $(other).open) $(other).close();
  }
  const panel = $(id);
  // Below the header, whose buttons stay tappable beside the panel.
  const bar = document.querySelector("header.bar").getBoundingClientRect();
  document.documentElement.style.setProperty("--bar-h", `${Math.max(0, Math.round(bar.bottom))}px`);
  panel.classList.add("side-panel");
  if (!panel.open) panel.show();
  document.body.classList.add("panel-open");
  panel.querySelector("h2")?.setAttribute("tabindex", "-1");
  panel.querySelector("h2")?.focus();
}
export function wirePanels() {
  for (const id of ["escalate-dialog", "detail-dialog"]) {
    const panel = $(id);
    panel.addEventListener("close", () => {
      if (!$("escalate-dialog").open && !$("detail-dialog").open) document.body.classList.remove("panel-open");
    });
    panel.addEventListener("keydown", (event) => { if (event.key === "Escape") panel.close(); });
  }
}

export let escalating = null;
export let collectNew = null;
export async function loadServices() {
  if (state.services) return;
  const result = await call("GET", "/api/v1/services");
  state.services = result.ok ? (result.data.services || []) : [];
}
export async function openEscalation(chat) {
  escalating = chat;
  $("escalate-sub").textContent = `${who(chat.gender, chat.age)} · chat ${short(chat.id)}`;
  $("escalate-form").reset();
  $("escalate-error").hidden = true;
  await loadServices();
  showKind();
  openPanel("escalate-dialog");
}
export function showKind() {
  const kind = $("escalate-form").elements.kind.value;
  $("e-guide").replaceChildren(h("ul", {}, (GUIDE[kind] || []).map((line) => h("li", {}, tr(line)))));
  collectNew = buildFields($("e-fields"), kind, { create: true });
  $("escalate-save").textContent = kind === "referral" ? t("send-and-record") : tr(SAVE_LABEL[kind]);
  $("escalate-record-only").hidden = kind !== "referral";
  $("escalate-error").hidden = true;
  if (kind === "referral") {
    // The message to the child, shown and editable before anything is sent.
    const services = $("e-fields").querySelector("select[multiple]");
    const preview = h("textarea", { id: "e-preview", rows: 5, maxlength: 4000 });
    const shown = h("div", { class: "wide" }, h("label", { for: "e-preview" }, t("preview")), preview,
      h("p", { class: "small muted", id: "e-preview-links" }));
    $("e-fields").append(shown);
    let edited = false;
    preview.addEventListener("input", () => { edited = true; links(); });
    const links = () => $("e-preview-links").replaceChildren(linkify(preview.value));
    const fillPreview = () => {
      if (edited) return;
      preview.value = referralText([...services.selectedOptions].map((o) => o.value));
      links();
    };
    services?.addEventListener("change", fillPreview);
    fillPreview();
  }
}
export async function saveEscalation(event) {
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
  // Sent only as the counsellor left it in the preview, and only when they chose to.
  const text = $("e-preview")?.value.trim();
  if (kind === "referral" && escalating.status === "active" && event.submitter?.id !== "escalate-record-only" && text) {
    await call("POST", `/api/v1/chats/${escalating.id}/messages`,
      { text, client_msg_id: `ref-${result.data.escalation_id}` });
  }
  $("escalate-dialog").close();
  // both halves, as the server writes a reason: the card shows the one of the console's language (reasonWords)
  if (kind === "acute_danger") escalating.flags.push({ kind, reason: bothLanguages("Akutt fare registrert") });
  renderCard(escalating);
  syncChat(escalating);
  loadChatEscalations(escalating);
  await showEscalation(result.data.escalation_id, tr(kind === "report_of_concern" ? "Utkastet er lagret." : "Registrert."));
}

export async function loadChatEscalations(chat) {
  const result = await call("GET", `/api/v1/chats/${chat.id}/escalations`);
  if (!result.ok) return;
  chat.escalations = result.data.escalations || [];
  renderChatEscalations(chat);
}
export function renderChatEscalations(chat) {
  const list = chat.card.querySelector(".chat-escalations");
  const items = chat.escalations || [];
  list.hidden = !items.length;
  list.replaceChildren(...items.map((esc) => h("li", {}, h("button", { type: "button",
    class: `ghost small-btn esc-chip ${esc.open ? "" : "done"}`, onclick: () => showEscalation(esc.escalation_id) },
  `${tr(KIND[esc.kind]) || esc.kind}: ${tr(ESC_STATUS[esc.status]) || esc.status}`))));
}

export async function refreshEscalations() {
  const result = await call("GET", "/api/v1/escalations?status=open");
  if (!result.ok) return;
  state.escalations = result.data.escalations || [];
  renderEscalations();
}
export function renderEscalations() {
  const at = (esc) => (esc.deadline ? new Date(esc.deadline).getTime() : Infinity);
  const list = (state.escalations || []).slice().sort((a, b) => at(a) - at(b) || a.created_at.localeCompare(b.created_at));
  $("escalations").replaceChildren(...list.map((esc) => h("li", { class: "esc", "data-escalation-id": esc.escalation_id },
    h("div", {}, h("strong", {}, tr(KIND[esc.kind]) || esc.kind), ` · chat ${short(esc.chat_id)} · `,
      h("span", { class: `pill st-${esc.status}` }, tr(ESC_STATUS[esc.status]) || esc.status)),
    esc.deadline ? h("div", { class: "small deadline", "data-deadline": esc.deadline })
      : h("div", { class: "small muted" }, `${tr("Åpnet {at}", { at: dateTime(esc.created_at) })}${esc.kind === "report_of_concern" && esc.status === "draft" ? tr(" · venter på godkjenning") : ""}`),
    h("button", { type: "button", class: "ghost small-btn", onclick: () => showEscalation(esc.escalation_id) }, tr("Åpne")))));
  if (!list.length) $("escalations").append(h("li", { class: "muted" }, tr("Ingen åpne eskaleringer.")));
  tick();
}

// The escalation being worked on in the dialog, and how to read its edited fields.
export const detail = { id: null, view: null, collect: null };
export async function showEscalation(id, note) {
  const result = await call("GET", `/api/v1/escalations/${id}`);
  if (!result.ok) { alert(problem(result)); return; }
  renderDetail(result.data, note);
  openPanel("detail-dialog");
}
export function renderDetail(view, note) {
  detail.id = view.escalation_id;
  detail.view = view;
  $("detail-title").textContent = tr(KIND[view.kind]) || view.kind;
  $("detail-status").textContent = tr(ESC_STATUS[view.status]) || view.status;
  $("detail-status").className = `pill st-${view.status}`;
  $("detail-meta").replaceChildren(...[["Chat", short(view.chat_id)], [tr("Opprettet"), dateTime(view.created_at)],
    [tr("Sist endret"), dateTime(view.updated_at)], view.sent_at ? [tr("Sendt"), dateTime(view.sent_at)] : null]
    .filter(Boolean).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  const deadline = $("detail-deadline");
  deadline.hidden = !view.deadline;
  if (view.deadline) {
    deadline.replaceChildren(tr("Barnevernet skal vurdere meldingen innen {n} dager. ", { n: view.assessment_days || 7 }),
      h("span", { class: "deadline", "data-deadline": view.deadline }));
  }
  const hint = $("detail-hint");
  const draftWait = view.kind === "report_of_concern" && view.status === "draft" && !supervisor();
  hint.hidden = !(draftWait || view.kind === "report_of_concern" && view.status === "approved");
  hint.textContent = draftWait ? tr("Vakthavende godkjenner meldingen før den sendes. Fyll ut det du vet; årsak, tidspunkt og varighet må være med.")
    : tr("Godkjent: innholdet er låst. Send meldingen (last ned PDF), og marker den som sendt.");
  const ident = $("detail-identifying");
  const stored = view.identifying?.fields || [];
  ident.hidden = !stored.length || view.identifying.visible;
  ident.textContent = tr("Identifiserende opplysninger er lagret kryptert og vises bare for vakthavende.");
  // The counsellor who wrote them may read them back during the chat (to tell 113).
  const back = $("detail-readback");
  back.replaceChildren();
  back.hidden = !stored.length || view.identifying.visible;
  if (!back.hidden) {
    back.append(h("button", { type: "button", class: "ghost small-btn", id: "readback-button",
      onclick: () => readBack(view.escalation_id) }, t("readback")), h("span", { class: "small" }, ` ${t("readback-note")}`));
  }
  const locked = view.kind === "report_of_concern" && view.status !== "draft";
  const editable = (field) => view.open && (!locked || field.tracking);
  detail.collect = buildFields($("detail-fields"), view.kind, { values: view.details || {}, editable, stored });
  $("detail-save").hidden = !view.open;
  $("detail-error").hidden = true;
  $("detail-ok").hidden = !note;
  $("detail-ok").textContent = note || "";
  $("detail-moves").replaceChildren(...(view.next || []).map((status) => h("button", { type: "button",
    class: status === "closed" || status === "draft" ? "ghost" : "primary", "data-status": status,
    onclick: () => patchEscalation(status) }, tr(MOVES[status]) || status)));
  $("detail-history").querySelector("ol").replaceChildren(...(view.history || []).map((step) =>
    h("li", {}, `${dateTime(step.at)} · ${tr(ESC_STATUS[step.status]) || step.status} · ${step.name || step.by}${step.role === "supervisor" ? " (vakthavende)" : ""}`)));
  const pdf = $("detail-pdf");
  pdf.hidden = !(supervisor() && view.kind === "report_of_concern");
  const audit = $("detail-audit");
  showTranscript(view);
  audit.hidden = !supervisor();
  audit.open = false;
  audit.querySelector("ol").replaceChildren();
  tick();
}
// issue 13: the supervisor approving a report reads the chat beside the draft
// (GET …/transcript, audited by the server). Built here so the dialog's markup stays as it is.
// A div with role=log, not an ol: axe wants li children only in a list.
export async function showTranscript(view) {
  const fields = $("detail-fields");
  let box = $("detail-transcript");
  if (!box) {
    box = h("details", { id: "detail-transcript", class: "detail-transcript", open: true },
      h("summary", {}, t("detail-transcript")), h("div", { class: "log", role: "log", tabindex: "0", "aria-label": t("detail-transcript") }));
    fields.parentElement.insertBefore(box, fields);
    fields.parentElement.classList.add("with-transcript");
  }
  const wanted = supervisor() && view.kind === "report_of_concern";
  box.hidden = !wanted;
  const list = box.querySelector(".log");
  list.replaceChildren();
  if (!wanted) return;
  const result = await call("GET", `/api/v1/escalations/${view.escalation_id}/transcript`);
  if (detail.id !== view.escalation_id) return;
  if (!result.ok) { list.append(h("p", { class: "muted" }, `${t("transcript-unavailable")}: ${problem(result)}`)); return; }
  const flagged = new Set((state.chats.get(view.chat_id)?.flags || []).map((f) => f.seq));
  list.replaceChildren(...result.data.messages.map((m) => h("div", {
    class: `msg ${m.sender}${m.visibility !== "all" ? " internal note" : ""}${flagged.has(m.seq) ? " flagged" : ""}`, "data-seq": m.seq },
    h("span", { class: "who" }, m.visibility !== "all" ? t("internal") : m.sender === "child" ? t("the-child") : m.sender === "counsellor" ? t("counsellor") : ""),
    h("p", { class: "text" }, linkify(m.text)),
    h("span", { class: "meta" }, h("time", { datetime: m.sent_at }, dateTime(m.sent_at))))));
  if (!result.data.messages.length) list.append(h("p", { class: "muted" }, t("no-messages")));
}
export async function patchEscalation(status) {
  const details = detail.collect();
  const body = {};
  if (Object.keys(details).length) body.details = details;
  if (status) body.status = status;
  if (!body.details && !body.status) {
    $("detail-ok").textContent = tr("Ingen endringer å lagre.");
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
  renderDetail(result.data, status ? tr("Status: {status}.", { status: tr(ESC_STATUS[result.data.status] || result.data.status) }) : tr("Endringene er lagret."));
  afterEscalationChange(result.data.chat_id);
}
export function afterEscalationChange(chatId) {
  const chat = state.chats.get(chatId);
  if (chat) loadChatEscalations(chat);
  if (supervisor()) refreshEscalations();
}
export async function loadAudit() {
  const box = $("detail-audit");
  if (!box.open || !detail.id) return;
  const result = await call("GET", `/api/v1/escalations/${detail.id}/audit`);
  box.querySelector("ol").replaceChildren(...(result.ok ? result.data.audit : []).map((row) =>
    h("li", {}, `${dateTime(row.at)} · ${row.action} · ${row.role || ""} ${short(row.actor_id)}${row.detail ? ` · ${row.detail}` : ""}`)));
}
export async function getPdf(id, near) {
  const status = await download(`/api/v1/escalations/${id}/report.pdf`, state.token, `bekymringsmelding-${short(id)}.pdf`);
  if (status !== 200) {
    near.textContent = status === 403 ? tr("Bare vakthavende kan laste ned meldingen.") : tr("Kunne ikke hente PDF ({status}).", { status });
    near.hidden = false;
  }
}


function referralText(ids) {
  const told = (state.services || []).filter((s) => ids.includes(s.id));
  if (!told.length) return "";
  // In the console's language, as the counsellor will send it (they may edit it first).
  const about = (s) => (lang.now === "en" ? s.description_en || s.description_nb : s.description_nb);
  return `${tr("Du kan også ta kontakt med:")}\n${told.map((s) => `${s.name}${s.phone ? ` (${s.phone})` : ""}${about(s) ? `: ${about(s)}` : ""}`).join("\n")}`;
}

const READ_LABELS = { location: "Hvor er barnet", person: "Barnet", contact_person: "Kontaktperson" };
const PART_LABELS = { name: "navn", school: "skole", address: "adresse", guardians: "foresatte", phone: "telefon",
  organisation: "virksomhet" };
async function readBack(id) {
  const back = $("detail-readback");
  const result = await call("GET", `/api/v1/escalations/${id}/identifying`);
  if (!result.ok) {
    back.replaceChildren(h("p", { class: "error small" }, result.status === 403
      ? tr("Samtalen er over: spør vakthavende.") : problem(result)));
    return;
  }
  const rows = [];
  for (const [key, value] of Object.entries(result.data.identifying || {})) {
    if (value && typeof value === "object") {
      for (const [part, text] of Object.entries(value)) {
        if (text) rows.push([`${tr(READ_LABELS[key] || key)}: ${PART_LABELS[part] || part}`, String(text)]);
      }
    } else if (value) rows.push([tr(READ_LABELS[key] || key), String(value)]);
  }
  back.replaceChildren(h("strong", {}, tr("Det du skrev (bare for deg, logget):")),
    h("dl", { class: "detail" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, linkify(v))])));
}
