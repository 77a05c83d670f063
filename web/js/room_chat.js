// A page's own chat in a consult room, until the server answers that each message is stored.
//
// Each message gets an id when it is written and keeps it however often it is sent: the server stores one message
// per sender and id, and answers a repeat as stored (signaling/messages.py, Chat). So a message whose answer may be
// lost is simply sent again: after a reconnect (the answer may have gone with the old socket), and after
// chat_not_stored or chat_outcome_unknown (the database was away, or its commit's answer was lost), after a pause:
// then the oldest alone, and the others once it is stored, so a database outage does not spend the socket's chat
// rate (over it, the server closes the socket). It stops with chat_stored, or with any other refusal (its text, the
// consult's cap, the room closed).

const RETRY_MS = [1000, 2000, 5000, 10000];
const SEND_AGAIN = new Set(["chat_not_stored", "chat_outcome_unknown"]);
// Messages unanswered on one socket at once: a fresh socket allows a burst of 10 chats (limits.ws_chat_burst).
const AT_ONCE = 8;

/** @returns {string} 22 URL-safe characters (128 random bits); crypto.randomUUID needs a secure context */
export function newChatId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export class ChatOutbox {
  /**
   * @param {(message: object) => boolean} send  sends on the current socket; false when there is none
   * @param {(id: string, state: "sending" | "stored" | "failed") => void} onState
   */
  constructor(send, onState) {
    this.send = send;
    this.onState = onState;
    /** @type {Map<string, {text: string, sent: boolean}>} unanswered, in the order written */
    this.waiting = new Map();
    this.attempt = 0;
    this.timer = null;
  }

  /** A new message: its id. */
  add(text) {
    const id = newChatId();
    this.waiting.set(id, {text, sent: false});
    this.flush();
    return id;
  }

  /** Send what is not already under way on this socket, oldest first, while fewer than ``atOnce`` are. */
  flush(atOnce = AT_ONCE) {
    let underWay = 0;
    for (const message of this.waiting.values()) underWay += message.sent ? 1 : 0;
    for (const [id, message] of this.waiting) {
      if (message.sent) continue;
      if (underWay >= atOnce || !this.send({type: "chat", id, text: message.text})) return;
      message.sent = true;
      underWay += 1;
    }
  }

  /** A new socket is joined: nothing is under way on it, and what the old one carried may not have been answered. */
  reconnected() {
    for (const message of this.waiting.values()) message.sent = false;
    this.flush();
  }

  /** chat_stored */
  stored(id) {
    if (this.waiting.delete(id)) {
      this.attempt = 0;
      this.onState(id, "stored");
    }
    this.flush();
  }

  /** An error naming one of our chats: true when it is sent again (later), false when it is given up. */
  refused(id, code) {
    const message = this.waiting.get(id);
    if (!message) return false;
    if (!SEND_AGAIN.has(code)) {
      this.waiting.delete(id);
      this.onState(id, "failed");
      this.flush();
      return false;
    }
    message.sent = false;
    this.onState(id, "sending");
    if (!this.timer) {
      this.timer = setTimeout(() => { this.timer = null; this.flush(1); }, RETRY_MS[Math.min(this.attempt, RETRY_MS.length - 1)]);
      this.attempt += 1;
    }
    return true;
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }
}
