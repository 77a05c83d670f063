// The live socket: resume by event id, reconnect with backoff, and a visible connection banner.
import {api, session, toLogin, SESSION_ENDED} from "./api.js";
import {t, onLanguageChange} from "./i18n.js";
import {h} from "./dom.js";

// A phone must be back quickly after a cut; the cap keeps a crowd of reconnecting clients gentle.
const BACKOFF_MS = [500, 1000, 2000, 3000, 5000];
// A link that died silently (no FIN, no RST) never closes the socket: a hello must come within this.
const HELLO_WITHIN_MS = 10000;
let refs = 0;

/**
 * new LiveSocket("/ws/unit", {onHello, onEvent, onMessage}).start()
 *
 * onHello(hello, {resumed}) runs on every (re)connection; onEvent(event, {replayed}) for each event
 * (replayed: its id is not after the hello's last_event_id, i.e. it happened before this connection);
 * onMessage(message) for anything else (positions batches, replies without a waiter).
 * resumeFrom: an event id seen before this page was loaded (kept across a reload), to resume from.
 *
 * A hello that names ``ping_s`` asks for a heartbeat: the socket pings that often, and a link that
 * answers nothing for twice that is taken for dead (a silent blackhole): the socket is given up,
 * its waiting requests fail at once, the banner says offline and a new connection is tried.
 */
export class LiveSocket {
  constructor(path, handlers, {resumeFrom = null} = {}) {
    this.path = path;
    this.handlers = handlers;
    this.lastId = resumeFrom;  // the last event id seen: the resume point
    this.heardAt = 0;
    this.heartbeat = null;
    this.helloTimer = null;
    this.helloId = 0;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.waiting = new Map();
    this.state = "connecting";
    this.banner = connectionBanner();
    this.stopped = false;
    this.offline = false;
    window.addEventListener("offline", () => this.goOffline());
    window.addEventListener("online", () => this.reconnectNow());
    onLanguageChange(() => this.show(this.state));
  }

  start() {
    this.connect();
    return this;
  }

  get connected() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.state === "online";
  }

  connect() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    // navigator.onLine is only a hint (false on a machine whose only network is loopback): always try.
    this.show(this.attempt ? "reconnecting" : "connecting");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const params = new URLSearchParams({token: session.token || ""});
    if (this.lastId !== null) params.set("after", String(this.lastId));
    const ws = new WebSocket(`${scheme}://${location.host}${this.path}?${params}`);
    this.ws = ws;
    this.helloTimer = setTimeout(() => this.giveUp(ws), HELLO_WITHIN_MS);
    ws.addEventListener("message", (e) => this.receive(ws, e.data));
    ws.addEventListener("close", (e) => this.closed(ws, e.code));
  }

  receive(ws, text) {
    if (ws !== this.ws) return;
    this.heardAt = Date.now();
    let message;
    try { message = JSON.parse(text); } catch { return; }
    if (message.type === "hello") {
      clearTimeout(this.helloTimer);
      if (message.ping_s) this.beat(ws, message.ping_s * 1000);
      const resumed = this.lastId !== null;
      this.helloId = message.last_event_id;
      if (this.lastId === null) this.lastId = message.last_event_id;
      this.attempt = 0;
      this.offline = false;
      this.show("online");
      this.handlers.onHello?.(message, {resumed});
    } else if (message.type === "event") {
      if (this.lastId !== null && message.id <= this.lastId) return;  // already seen
      this.lastId = message.id;
      this.handlers.onEvent?.(message, {replayed: message.id <= this.helloId});
    } else if (message.ref && this.waiting.has(message.ref)) {
      const {resolve} = this.waiting.get(message.ref);
      this.waiting.delete(message.ref);
      resolve(message);
    } else {
      this.handlers.onMessage?.(message);
    }
  }

  /** Ping every ``everyMs``; nothing heard for twice that: the link is dead (looked at more often than pinged,
   * so a dead link is noticed soon after the second silent period). */
  beat(ws, everyMs) {
    clearInterval(this.heartbeat);
    let pingedAt = Date.now();
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.heardAt > 2 * everyMs) {
        this.giveUp(ws);
      } else if (Date.now() - pingedAt >= everyMs && ws === this.ws && ws.readyState === WebSocket.OPEN) {
        pingedAt = Date.now();
        ws.send(JSON.stringify({type: "ping"}));
      }
    }, Math.min(everyMs / 3, 1000));
  }

  /** The link answers nothing: stop waiting for a close that may never come, and connect again. */
  giveUp(ws) {
    if (ws !== this.ws) return;
    this.offline = true;
    this.closed(ws, 4002);
    ws.close(4002, "no answer");
  }

  closed(ws, code) {
    if (ws !== this.ws) return;
    this.ws = null;
    clearInterval(this.heartbeat);
    clearTimeout(this.helloTimer);
    for (const {reject} of this.waiting.values()) reject(new Error(t("live.lost")));
    this.waiting.clear();
    if (this.stopped) return;
    if (code === SESSION_ENDED) {
      // The session was revoked or expired: its token is dead, so no reconnect; sign in again.
      this.stopped = true;
      this.show("signed_out");
      toLogin(true);
      return;
    }
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)] * (0.8 + Math.random() * 0.4);
    this.attempt += 1;
    this.show(this.offline ? "offline" : "reconnecting", Math.round(delay / 1000));
    this.timer = setTimeout(() => this.connect(), delay);
    // A refused token never comes back: find out, and send the user to log in.
    if (this.attempt >= 2) api("GET", "/api/me").catch(() => {});
  }

  /** The browser says the network is gone: drop the socket now rather than wait for a timeout. */
  goOffline() {
    this.offline = true;
    if (this.ws) this.ws.close(4001, "offline");
    this.show("offline");
  }

  reconnectNow() {
    this.offline = false;
    if (this.ws || this.stopped) return;
    clearTimeout(this.timer);
    this.attempt = Math.max(this.attempt, 1);
    this.connect();
  }

  /** Send a message; resolves with the reply carrying the same ref (ok or error). */
  request(message, timeoutMs = 10000) {
    if (!this.connected) return Promise.reject(new Error(t("live.not_connected")));
    const ref = `r${++refs}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(ref);
        reject(new Error(t("live.no_reply")));
      }, timeoutMs);
      this.waiting.set(ref, {
        resolve: (m) => { clearTimeout(timer); resolve(m); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.ws.send(JSON.stringify({...message, ref}));
    });
  }

  /** Fire and forget (GPS fixes); false when not connected. */
  send(message) {
    if (!this.connected) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  /** Test hook and "log out": close the underlying socket as a network cut would. */
  drop() {
    if (this.ws) this.ws.close(4000, "dropped");
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.heartbeat);
    clearTimeout(this.helloTimer);
    if (this.ws) this.ws.close(1000);
  }

  show(state, seconds) {
    this.state = state;
    const text = {connecting: t("live.connecting"), online: "", offline: t("live.offline"),
                  reconnecting: t("live.reconnecting", {seconds: seconds ?? 1}), signed_out: t("live.signed_out")}[state];
    this.banner.hidden = state === "online";
    this.banner.className = `conn-banner conn-${state}`;
    this.banner.dataset.state = state;
    this.banner.textContent = text;
    document.body.dataset.connection = state;
  }
}

/** The one banner every page shows while it is not live (id conn-banner). */
export function connectionBanner() {
  let banner = document.getElementById("conn-banner");
  if (!banner) {
    banner = h("div", {id: "conn-banner", role: "status", "aria-live": "polite"});
    document.body.prepend(banner);
  }
  return banner;
}

export {toLogin};
