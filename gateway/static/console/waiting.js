// Nobody waits unnoticed (issue 13): a child entering the queue, and a child
// still waiting past wait_warn_s while someone available has room, rings once
// (unless muted), changes the tab title and shows a desktop notification where
// the browser allows it. The queue row's colour follows the wait.
import { $, state, who } from "/static/console/api.js";
import { t } from "/static/console/i18n.js";
import { beep, updateTitle } from "/static/console/alerts.js";

const MUTE_STORE = "chatvakt-console-muted";
const rung = { entered: new Set(), long: new Set(), primed: false };
export const sound = { muted: (() => { try { return localStorage.getItem(MUTE_STORE) === "1"; } catch (e) { return false; } })() };

export function renderMute() {
  const button = $("mute");
  button.setAttribute("aria-pressed", String(sound.muted));
  button.dataset.i18n = sound.muted ? "unmute" : "mute";
  button.textContent = t(button.dataset.i18n);
  const notify = $("notify");
  notify.hidden = !("Notification" in window) || Notification.permission !== "default";
}
export function toggleMute() {
  sound.muted = !sound.muted;
  try { localStorage.setItem(MUTE_STORE, sound.muted ? "1" : "0"); } catch (e) { /* this tab only */ }
  renderMute();
}
// The permission must be asked on a click; the console never asks unprompted.
export async function askNotifications() {
  if ("Notification" in window && Notification.permission === "default") await Notification.requestPermission();
  renderMute();
}
export function ring(severe) {
  if (!sound.muted) beep(severe);
}
function notify(key, whoWaits, tag) {
  state.waitingNote = { key, who: whoWaits };
  const text = `${t(key)}: ${whoWaits}`;
  updateTitle();
  try {
    if ("Notification" in window && Notification.permission === "granted" && document.visibilityState !== "visible") {
      new Notification(`chatvakt: ${text}`, { tag, silent: true });
    }
  } catch (error) { /* the title and the sound still tell */ }
}
// Someone available has room: the presence the server reports for this console
// (available, below capacity), or any available colleague for a supervisor.
function someoneHasRoom() {
  const p = state.presence;
  const mine = p && p.status === "available" && (p.active_chats ?? 0) < (p.capacity ?? 1);
  return Boolean(mine || (state.available ?? 0) > 0);
}
export const waitWarnS = () => state.waitWarnS || 120;

// Called on every queue update: a chat not seen before is a child entering.
export function queueUpdated(entries) {
  const fresh = entries.filter((entry) => !rung.entered.has(entry.chat_id));
  for (const entry of entries) rung.entered.add(entry.chat_id);
  // The first list after login is not "entering": it is what was already there.
  if (!rung.primed) { rung.primed = true; check(entries); return; }
  if (fresh.length) {
    ring(fresh.some((entry) => entry.risk));
    notify("new-child", who(fresh[0].gender, fresh[0].age), "queue-new");
  }
  check(entries);
}
// Called every second from the tick.
export function check(entries = state.queue) {
  const now = Date.now();
  let long = false;
  for (const entry of entries) {
    const waited = (now - Date.parse(entry.waiting_since)) / 1000;
    const row = document.querySelector(`#queue li[data-chat-id="${CSS.escape(entry.chat_id)}"]`);
    row?.classList.toggle("wait-warn", waited >= waitWarnS() / 2 && waited < waitWarnS());
    row?.classList.toggle("wait-long", waited >= waitWarnS());
    if (waited >= waitWarnS()) {
      long = true;
      if (!rung.long.has(entry.chat_id) && someoneHasRoom()) {
        rung.long.add(entry.chat_id);
        ring(true);
        notify("long-wait", who(entry.gender, entry.age), `queue-long-${entry.chat_id}`);
      }
    }
  }
  // The title stays changed until the counsellor is back at the console
  // (a click or a key, see calm()) or nobody waits any more.
  if (!entries.length && state.waitingNote) { state.waitingNote = null; updateTitle(); }
}
export function calm() {
  if (state.waitingNote) { state.waitingNote = null; updateTitle(); }
}
