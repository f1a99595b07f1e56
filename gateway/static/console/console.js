// The counsellor console (and the supervisor's view of it): login and wiring.
// Staff token in sessionStorage so a reload keeps the shift going; gone with the tab.
import { api, Live } from "/static/common/net.js";
import { STORE } from "/static/console/i18n.js";
import { $, state, supervisor, call, problem, save } from "/static/console/api.js";
import { onState, onEvent } from "/static/console/socket.js";
import { refreshAlerts, updateTitle } from "/static/console/alerts.js";
import { setPresence, loadPresence, loadColleagues, refreshQueue, renderPresence, renderQueue, renderOffers, renderOverdue, take } from "/static/console/queue.js";
import { loadActive, refreshAllChats, refreshUncoded, renderMine, tick } from "/static/console/lists.js";
import { saveTransfer, renderCard } from "/static/console/chatcard.js";
import { buildTree, saveCoding } from "/static/console/coding.js";
import { wirePanels, showKind, saveEscalation, refreshEscalations, detail, patchEscalation, loadAudit, getPdf } from "/static/console/escalation.js";
import { loadStats, statsCsv, showView } from "/static/console/stats.js";
import { applyLanguage, switchLanguage, t, tr } from "/static/console/i18n.js";
import { renderMute, toggleMute, askNotifications, calm } from "/static/console/waiting.js";

// -- login -------------------------------------------------------------------
async function login(event) {
  event.preventDefault();
  const result = await api("POST", "/api/v1/auth/login",
    { body: { username: $("username").value.trim(), password: $("password").value } });
  if (!result.ok) {
    $("login-error").textContent = result.status === 401 ? t("login.wrong") : problem(result);
    $("login-error").hidden = false;
    return;
  }
  state.token = result.data.token;
  state.me = result.data.counsellor;
  save();
  $("password").value = "";
  enter();
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
  // data-i18n: the role pill follows the language switch like the rest of the header
  $("me-role").dataset.i18n = supervisor() ? "role.supervisor" : "role.counsellor";
  $("me-role").textContent = t($("me-role").dataset.i18n);
  $("me-role").title = tr("Din id: {id}", { id: state.me.id });
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
  $("opt-in").addEventListener("click", () => { $("cooldown").open = false; }, { capture: true });
  $("opt-in").addEventListener("click", () => setPresence(state.presence?.status === "offline" ? "available" : state.presence?.status || "available",
    Number($("capacity").value) || 3, true));
  $("transfer-form").addEventListener("submit", saveTransfer);
  wirePanels();
  document.addEventListener("pointerdown", calm);
  document.addEventListener("keydown", calm);
  $("mute").addEventListener("click", toggleMute);
  $("notify").addEventListener("click", askNotifications);
  const relanguage = () => {
    switchLanguage();
    renderMute();
    for (const chat of state.chats.values()) renderCard(chat);
    if (state.me) $("me-role").title = tr("Din id: {id}", { id: state.me.id });
    if (!$("stats").hidden) loadStats();
    if (state.me) {
      renderPresence(); renderQueue(); renderOffers(); refreshAlerts(true);
      // the side lists say "None." / "Everything is coded." in the new language too
      renderMine(); refreshUncoded();
      if (supervisor()) { renderOverdue(); refreshAllChats(); }
    }
    updateTitle();
  };
  $("lang-switch").addEventListener("click", relanguage);
  $("login-lang").addEventListener("click", relanguage);
  applyLanguage();
  updateTitle();
  renderMute();
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
