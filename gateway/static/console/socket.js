// What the push socket says, routed to the part of the console it concerns.
import { h } from "/static/common/net.js";
import { STORE, WITHDRAWN, t, tr } from "/static/console/i18n.js";
import { $, state, supervisor, save } from "/static/console/api.js";
import { queueUpdated, ring } from "/static/console/waiting.js";
import { quickExitNotice } from "/static/console/alerts.js";
import { raiseAlert, clearAlerts, refreshAlerts, beep } from "/static/console/alerts.js";
import { loadPresence, renderPresence, renderOffers, codingReminder, renderOverdue, noteColleague, refreshQueue, refreshQueueSoon, renderQueue } from "/static/console/queue.js";
import { refreshAllChats, refreshUncoded } from "/static/console/lists.js";
import { openChat, renderCard, syncChat, addMessage, showTyping, hideTyping } from "/static/console/chatcard.js";
import { ESC_STATUS, loadChatEscalations, refreshEscalations, detail, showEscalation } from "/static/console/escalation.js";

// -- socket events -------------------------------------------------------------
export function onState(kind, info) {
  const line = $("conn");
  const words = kind === "online" ? t("online") : kind === "unauthorized" ? t("logged-out") : t("reconnecting");
  // Online is a green dot with the words for screen readers; trouble is shown in words.
  line.replaceChildren(kind === "online" ? h("span", { class: "visually-hidden" }, words) : words);
  line.title = words;
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

export function onEvent(name, data) {
  const chat = data.chat_id ? state.chats.get(data.chat_id) : null;
  switch (name) {
    case "queue.changed":
      // The push carries the first entries and counts; past those, the full
      // list comes from GET /api/v1/queue (at most every few seconds).
      state.queue = data.waiting || [];
      state.queueCount = data.waiting_count ?? state.queue.length;
      state.available = data.available_counsellors;
      renderQueue();
      queueUpdated(state.queue);
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
        chat.endedAt = chat.endedAt || new Date().toISOString();
        hideTyping(chat);
        renderCard(chat);
        syncChat(chat);
      }
      if (supervisor()) refreshAllChats();
      if (data.ended_by === "quick_exit" && (chat || supervisor())) quickExitNotice(data.chat_id);
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
        && !detail.busy && detail.view?.status !== data.status) showEscalation(data.escalation_id, tr("Endret av en annen: {status}.", { status: tr(ESC_STATUS[data.status] || data.status) }));
      break;
    case "queue.offer":
      state.offers.set(data.chat_id, data);
      renderOffers();
      ring(true);  // an offer must be heard: it passes on if nobody answers
      break;
    case "queue.offer_withdrawn":
      if (state.offers.delete(data.chat_id)) renderOffers(tr(WITHDRAWN[data.why] || "Tilbudet ble trukket."));
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

