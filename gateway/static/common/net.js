// The two pages' link to the gateway: JSON over fetch and the push socket.
// Same origin only; no cookies (credentials: "omit"), the token goes in a header.

export async function api(method, path, { token, body, keepalive = false } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, keepalive, credentials: "omit", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    return { ok: false, status: 0, data: null, offline: true };
  }
  let data = null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("application/json")) {
    try { data = await response.json(); } catch (error) { data = null; }
  }
  return { ok: response.ok, status: response.status, data, response };
}

// A feature whose endpoint the gateway does not offer (yet): the router answers
// 404/405 with an HTML page, while a real "not found" from the API is JSON.
export function missing(result) {
  return (result.status === 404 || result.status === 405) && result.data === null;
}

// Download something that needs the bearer token (CSV, PDF) without leaving the page.
export async function download(path, token, filename) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` }, credentials: "omit" });
  if (!response.ok) return response.status;
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return 200;
}

// The push socket: authenticates, reconnects with backoff, and reports its
// state so the page can say "reconnecting" and fetch what it missed.
export class Live {
  constructor(token, { onEvent, onState }) {
    this.token = token;
    this.onEvent = onEvent;
    this.onState = onState || (() => {});
    this.socket = null;
    this.closed = false;
    this.attempt = 0;
    this.nextId = 1;
    this.pending = new Map();
    this.timer = null;
    this.everConnected = false;
  }

  start() {
    this.closed = false;
    this.connect();
    this.onlineHandler = () => { if (!this.ready()) this.reconnectNow(); };
    window.addEventListener("online", this.onlineHandler);
    return this;
  }

  ready() {
    return this.socket && this.socket.readyState === WebSocket.OPEN && this.authed;
  }

  connect() {
    clearTimeout(this.timer);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let socket;
    try {
      socket = new WebSocket(`${scheme}://${location.host}/ws`);
    } catch (error) {
      this.schedule();
      return;
    }
    this.socket = socket;
    this.authed = false;
    this.onState(this.everConnected ? "reconnecting" : "connecting");
    socket.addEventListener("open", async () => {
      const result = await this.call("auth", { token: this.token });
      if (socket !== this.socket) return;
      if (!result.success) {
        this.onState("unauthorized");
        this.stop();
        return;
      }
      this.authed = true;
      this.attempt = 0;
      const again = this.everConnected;
      this.everConnected = true;
      this.onState("online", { reconnected: again });
    });
    socket.addEventListener("message", (message) => {
      let frame;
      try { frame = JSON.parse(message.data); } catch (error) { return; }
      if (frame.type === "event") {
        if (frame.event !== "connected") this.onEvent(frame.event, frame.data || {});
      } else if (frame.correlation_id && this.pending.has(frame.correlation_id)) {
        this.pending.get(frame.correlation_id)(frame);
        this.pending.delete(frame.correlation_id);
      }
    });
    socket.addEventListener("close", () => {
      if (socket !== this.socket) return;
      for (const resolve of this.pending.values()) resolve({ success: false });
      this.pending.clear();
      this.authed = false;
      if (!this.closed) {
        this.onState("offline");
        this.schedule();
      }
    });
  }

  schedule() {
    if (this.closed) return;
    const delay = Math.min(10000, 500 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.closed) return;
    this.attempt = 0;
    if (this.socket) {
      const old = this.socket;
      this.socket = null;
      try { old.close(); } catch (error) { /* already closed */ }
    }
    this.connect();
  }

  call(method, data) {
    return new Promise((resolve) => {
      if (!this.socket || this.socket.readyState !== WebSocket.OPEN) {
        resolve({ success: false });
        return;
      }
      const id = String(this.nextId++);
      this.pending.set(id, resolve);
      this.socket.send(JSON.stringify({ method, data, correlation_id: id }));
      setTimeout(() => {
        if (this.pending.has(id)) {
          this.pending.delete(id);
          resolve({ success: false, timeout: true });
        }
      }, 10000);
    });
  }

  stop() {
    this.closed = true;
    clearTimeout(this.timer);
    window.removeEventListener("online", this.onlineHandler);
    if (this.socket) {
      const old = this.socket;
      this.socket = null;
      try { old.close(); } catch (error) { /* already closed */ }
    }
  }
}

// Elements without innerHTML: text is always text, never markup.
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clientId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
