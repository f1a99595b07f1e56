// Shared state of the console and its link to the gateway.
import { api } from "/static/common/net.js";
import { STORE, GENDER, tr } from "/static/console/i18n.js";

export const $ = (id) => document.getElementById(id);
export const state = {
  token: null, me: null, live: null, chats: new Map(), queue: [], taxonomy: null, focused: null,
  features: { notes: true, whisper: true, phase: true, list: true, history: true, counsellors: true },
  services: null, presence: null, offers: new Map(), overdue: new Map(), colleagues: new Map(),
};
export const supervisor = () => ["supervisor", "admin"].includes(state.me?.role);
export const who = (gender, age) => `${tr(GENDER[gender] || "Ukjent")} ${age ?? "?"}`;
export const short = (id) => (id || "").slice(0, 6);

export function clock(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString("nb-NO", { hour: "2-digit", minute: "2-digit" });
}
export function since(iso) {
  const seconds = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60 ? `${minutes} min ${seconds % 60} s` : `${Math.floor(minutes / 60)} t ${minutes % 60} min`;
}
export function dateTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "–" : date.toLocaleString("nb-NO", { dateStyle: "short", timeStyle: "short" });
}
export const call = (method, path, body) => api(method, path, { token: state.token, body });
export function problem(result) {
  if (result.offline) return "Ingen forbindelse med serveren.";
  const error = result.data?.error;
  if (!error) return `Feil (${result.status}).`;
  const fields = error.fields ? Object.entries(error.fields).map(([k, v]) => `${k}: ${v.join(" ")}`).join(" ") : "";
  return `${error.message}${fields ? ` ${fields}` : ""}`;
}

export function save() {
  try {
    sessionStorage.setItem(STORE, JSON.stringify({ token: state.token, me: state.me, presence: state.presence,
      open: [...state.chats.keys()] }));
  } catch (error) { /* memory only */ }
}

