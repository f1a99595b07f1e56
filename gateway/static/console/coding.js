// Coding a chat: categories (the subcategory rule), acute danger, history.
import { h, missing } from "/static/common/net.js";
import { GENDER, categoryName, lang, tr } from "/static/console/i18n.js";
import { $, state, short, dateTime, call, problem } from "/static/console/api.js";
import { refreshUncoded } from "/static/console/lists.js";
import { renderCard } from "/static/console/chatcard.js";

// -- coding -------------------------------------------------------------------------
export const coding = { chatId: null, chosen: [] };

export function labelOf(code) {
  for (const main of state.taxonomy?.categories || []) {
    if (main.code === code) return categoryName(main);
    const sub = main.subcategories.find((s) => s.code === code);
    if (sub) return `${categoryName(main)} › ${categoryName(sub)}`;
  }
  return code;
}
export const parentOf = (code) => (code.includes(".") ? code.split(".")[0] : null);

export function toLocalInput(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}
export function fromLocalInput(value) {
  return value ? new Date(value).toISOString() : null;
}

export async function openCoding(chatId) {
  const result = await call("GET", `/api/v1/chats/${chatId}/coding?lang=${lang.now}`);
  if (!result.ok) { alert(problem(result)); return; }
  const data = result.data;
  coding.chatId = chatId;
  coding.chosen = [...(data.categories || [])];
  $("coding-sub").textContent = tr("Chat {id} · {state}", { id: short(chatId), state: tr(data.coded ? "kodet tidligere – du endrer kodingen" : "ikke kodet ennå") });
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

export async function loadHistory(chatId) {
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
  box.querySelector("summary").textContent = tr("Tidligere versjoner ({n})", { n: versions.length });
  box.querySelector("ol").replaceChildren(...versions.slice().reverse().map((v) => {
    const names = labels[v.taxonomy_version] || {};
    const coding = v.coding || {};
    return h("li", { class: "version" },
      h("strong", {}, `${tr("Versjon {v}", { v: v.version })}${v.correction ? tr(" (rettelse)") : ""}`),
      ` · ${dateTime(v.changed_at || v.coded_at)} · ${v.changed_by_name || v.coded_by?.name || short(v.changed_by)}`,
      v.taxonomy_version && v.taxonomy_version !== state.taxonomy?.version ? h("span", { class: "pill" }, `kategorier ${v.taxonomy_version}`) : null,
      h("div", {}, `Kategorier: ${(v.categories || coding.categories || []).map((c) => names[c] || labelOf(c)).join(", ") || "–"}`),
      h("div", { class: "muted" }, `${GENDER[coding.gender] || coding.gender || "–"} ${coding.age ?? ""} · akutt fare ${coding.acute_danger ? "ja" : "nei"}${v.changed_fields?.length ? ` · endret: ${v.changed_fields.join(", ")}` : ""}`));
  }));
  box.hidden = false;
}
export const taxonomies = {};
export async function taxonomyLabels(version) {
  const key = `${version}:${lang.now}`;
  if (taxonomies[key]) return taxonomies[key];
  let doc = state.taxonomy?.version === version ? state.taxonomy : null;
  if (!doc) {
    const result = await call("GET", `/api/v1/taxonomy?lang=nb&version=${encodeURIComponent(version)}`);
    doc = result.ok ? result.data : { categories: [] };
  }
  const names = {};
  for (const main of doc.categories || []) {
    names[main.code] = categoryName(main);
    for (const sub of main.subcategories || []) names[sub.code] = `${categoryName(main)} › ${categoryName(sub)}`;
  }
  taxonomies[key] = names;
  return names;
}

export function buildTree() {
  const tree = $("c-tree");
  const filter = $("c-filter").value.trim().toLowerCase();
  tree.replaceChildren();
  for (const main of state.taxonomy?.categories || []) {
    // Either language finds a category, whichever the console shows.
    const found = (entry) => [entry.label, entry.label_nb, entry.label_en].some((w) => (w || "").toLowerCase().includes(filter));
    const subs = main.subcategories.filter((s) => !filter || found(s) || found(main));
    if (filter && !subs.length) continue;
    const chosenHere = coding.chosen.some((c) => c === main.code || parentOf(c) === main.code);
    const group = h("details", { class: "group", open: Boolean(filter) || chosenHere },
      h("summary", {}, categoryName(main), chosenHere ? h("span", { class: "pill" }, tr("valgt")) : null));
    const list = h("div", { class: "subs" });
    for (const sub of subs) list.append(checkbox(sub.code, categoryName(sub)));
    list.append(checkbox(main.code, tr("Bare hovedkategori: {label} (kun når ingen underkategori passer)", { label: categoryName(main) }), "main-only"));
    const warn = h("p", { class: "rule-warn small", role: "alert", hidden: true });
    group.append(list, warn);
    tree.append(group);
  }
  checkRule();
}

export function checkbox(code, label, extra = "") {
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
export function checkRule() {
  let broken = false;
  for (const group of $("c-tree").querySelectorAll("details")) {
    const mainBox = group.querySelector(".main-only input");
    const main = mainBox?.value;
    const subs = coding.chosen.filter((c) => parentOf(c) === main);
    const warn = group.querySelector(".rule-warn");
    const bites = coding.chosen.includes(main) && subs.length > 0;
    warn.hidden = !bites;
    warn.textContent = bites ? tr("Du har valgt både hovedkategorien og underkategorien «{sub}». Underkategori er primærkategori – fjern hovedkategorien. Hovedkategori brukes kun når ingen underkategori passer.", { sub: labelOf(subs[0]).split(" › ")[1] }) : "";
    broken = broken || bites;
  }
  $("coding-save").dataset.rule = broken ? "broken" : "";
}

export function renderChosen() {
  const list = $("c-chosen");
  list.replaceChildren(...coding.chosen.map((code, index) => h("li", {},
    h("span", {}, `${index === 0 ? tr("Primær: ") : ""}${labelOf(code)}`),
    index > 0 ? h("button", { type: "button", class: "ghost small-btn", onclick: () => {
      coding.chosen = [code, ...coding.chosen.filter((c) => c !== code)];
      renderChosen();
    } }, tr("Gjør primær")) : null,
    h("button", { type: "button", class: "ghost small-btn", "aria-label": tr("Fjern {label}", { label: labelOf(code) }), onclick: () => {
      coding.chosen = coding.chosen.filter((c) => c !== code);
      buildTree();
      renderChosen();
    } }, tr("Fjern")))));
  if (!coding.chosen.length) list.append(h("li", { class: "muted" }, tr("Ingen kategori valgt ennå.")));
}

export async function saveCoding(event) {
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
  const result = await call("PUT", `/api/v1/chats/${coding.chatId}/coding?lang=${lang.now}`, body);
  if (!result.ok) {
    const fields = result.data?.error?.fields || {};
    for (const [field, messages] of Object.entries(fields)) {
      const node = document.querySelector(`#coding-form [data-field="${field}"]`);
      if (node) node.textContent = messages.join(" ");
    }
    $("coding-error").textContent = result.status === 422 ? tr("Kodingen er ikke gyldig – se merknadene over.") : problem(result);
    $("coding-error").hidden = false;
    return;
  }
  $("coding-dialog").close();
  refreshUncoded();
  const chat = state.chats.get(coding.chatId);
  if (chat && chat.status !== "active") {
    chat.card.classList.add("coded");
    chat.card.querySelector(".act-code").textContent = tr("Kodet ✓");
    chat.card.querySelector(".act-code").removeAttribute("data-i18n");
    // Ended and coded: the card folds away so the live chats keep the room.
    chat.folded = true;
    renderCard(chat);
  }
}

