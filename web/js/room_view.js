// The video room on screen: both videos, mute / camera off / audio only, chat, connection quality, reconnect.
// Shared by the puskesmas and the specialist pages; the connection itself is VideoRoom (room.js).
import {api, errorText, session} from "./api.js";
import {fill, guard, h, localTime} from "./dom.js";
import {onLanguageChange, t, translate} from "./i18n.js";
import {VideoRoom} from "./room.js";

let current = null;

/** Open the room of ``consultId`` inside ``container`` (replacing any room open before); resolves with the VideoRoom. */
export async function openRoom(container, consultId, {audioOnly = false, peerName = ""} = {}) {
  closeRoom();
  const view = build(container, peerName);
  const chatLog = [];
  const room = new VideoRoom(consultId, {
    onState: (state) => showState(view, state),
    onLocalStream: (stream) => attach(view.local, stream),
    onRemoteStream: (stream) => attach(view.remote, stream),
    onChat: (message) => { if (addChat(chatLog, message)) renderChat(view, chatLog); },
    onChatState: (id, state) => {
      const mine = chatLog.find((m) => m.mine && m.id === id);
      if (mine) { mine.state = state; renderChat(view, chatLog); }
    },
    onQuality: (q) => showQuality(view, q),
    onMode: (q) => showMode(view, q),
    onError: (err) => { view.error.textContent = errorText(err); },
  });
  current = {room, container};
  window.__room = room;  // test hook: room.pc is the RTCPeerConnection
  wire(view, room, chatLog);
  showQuality(view, null);
  onLanguageChange(() => {
    if (current?.room !== room) return;
    showPeer(view);
    showState(view, room.state);
    showQuality(view, room.quality);
    showMode(view, room.adapt?.state() || null);
    renderChat(view, chatLog);
  });
  container.hidden = false;
  view.audioOnly.setAttribute("aria-pressed", String(audioOnly));
  // Earlier chat of this consult (e.g. before a reload), but what the room brought meanwhile.
  guard(api("GET", `/api/consults/${encodeURIComponent(consultId)}/chat`).then((stored) => {
    const me = String(session.user?.id);
    const earlier = stored.messages.map((m) => ({id: m.client_id, from: String(m.from_user), text: m.text,
      mine: String(m.from_user) === me, at: new Date(m.at), state: "stored"}));
    chatLog.unshift(...earlier.filter((m) => !m.id || !chatLog.some((shown) => sameChat(shown, m))));
    renderChat(view, chatLog);
  }));
  await room.open({audioOnly});
  view.audioOnly.setAttribute("aria-pressed", String(room.audioOnly));
  return room;
}

export function closeRoom() {
  if (!current) return;
  current.room.close();
  current.container.hidden = true;
  current = null;
}

export function currentRoom() {
  return current?.room || null;
}

function build(container, peerName) {
  const button = (id, key) => h("button", {type: "button", id, "aria-pressed": "false", "data-i18n": key}, t(key));
  const view = {
    state: h("span", {id: "room-state", class: "room-state", role: "status", "aria-live": "polite"}),
    peer: h("span", {id: "room-peer", class: "room-peer"}),
    peerName,
    remote: h("video", {id: "remote-video", class: "remote-video", autoplay: true, playsinline: true, "data-i18n-attr": "aria-label:room.remote"}),
    local: h("video", {id: "local-video", class: "local-video", autoplay: true, playsinline: true, muted: true, "data-i18n-attr": "aria-label:room.local"}),
    quality: h("p", {id: "room-quality", class: "hint room-quality", "aria-live": "off"}),
    mode: h("p", {id: "room-mode", class: "hint room-mode", "aria-live": "polite"}),
    write: h("button", {type: "button", id: "room-write", "data-i18n": "room.write"}, t("room.write")),
    mute: button("room-mute", "room.mute"),
    camera: button("room-camera", "room.camera_off"),
    audioOnly: button("room-audio-only", "room.audio_only"),
    reconnect: h("button", {type: "button", id: "room-reconnect", "data-i18n": "room.reconnect"}, t("room.reconnect")),
    hangup: h("button", {type: "button", id: "room-hangup", class: "danger", "data-i18n": "room.hangup"}, t("room.hangup")),
    chat: h("ol", {id: "chat-log", class: "chat-log", "aria-live": "polite"}),
    chatText: h("input", {id: "chat-text", maxlength: "2000", autocomplete: "off", "data-i18n-attr": "aria-label:room.chat_label;placeholder:room.chat_placeholder"}),
    error: h("p", {id: "room-error", class: "error", role: "alert"}),
  };
  view.local.muted = true;  // the attribute alone does not mute a video element created by script
  view.chatForm = h("form", {id: "chat-form", class: "chat-form"}, view.chatText,
    h("button", {type: "submit", "data-i18n": "room.send"}, t("room.send")));
  fill(container,
    h("div", {class: "room-head"}, h("h2", {id: "room-h", "data-i18n": "room.title"}, t("room.title")), view.peer, view.state),
    h("div", {class: "videos"}, view.remote, view.local),
    view.quality,
    view.mode,
    view.writing = h("div", {id: "room-writing", class: "notice", role: "alert", hidden: true},
      h("p", {"data-i18n": "room.writing"}, t("room.writing")), view.write),
    h("div", {class: "buttons room-controls"}, view.mute, view.camera, view.audioOnly, view.reconnect, view.hangup),
    view.error,
    h("section", {class: "chat", "aria-labelledby": "chat-h"}, h("h3", {id: "chat-h", "data-i18n": "room.chat"}, t("room.chat")), view.chat, view.chatForm));
  translate(container);
  showPeer(view);
  return view;
}

function showPeer(view) {
  view.peer.textContent = view.peerName ? t("room.with", {name: view.peerName}) : "";
}

function wire(view, room, chatLog) {
  const toggle = (button, fn) => button.addEventListener("click", () => {
    const on = button.getAttribute("aria-pressed") !== "true";
    button.setAttribute("aria-pressed", String(on));
    guard(fn(on), (err) => { view.error.textContent = errorText(err); });
  });
  toggle(view.mute, async (on) => room.setMuted(on));
  toggle(view.camera, async (on) => room.setCameraOff(on));
  toggle(view.audioOnly, (on) => room.setAudioOnly(on));
  view.reconnect.addEventListener("click", () => room.dropSocket());
  // Store and forward: the call stops asking for what the link cannot carry; chat and attachments go through the server.
  view.write.addEventListener("click", () => guard((async () => {
    document.body.dataset.writing = "true";
    view.audioOnly.setAttribute("aria-pressed", "true");
    view.mute.setAttribute("aria-pressed", "true");
    room.setMuted(true);
    await room.setAudioOnly(true);
    view.chatText.focus();
  })(), (err) => { view.error.textContent = errorText(err); }));
  view.hangup.addEventListener("click", () => closeRoom());
  view.chatForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = view.chatText.value.trim();
    if (!text) return;
    if (room.sendChat(text)) {
      view.chatText.value = "";
      view.error.textContent = "";
    } else {
      view.error.textContent = t("room.chat_offline");
    }
    renderChat(view, chatLog);
  });
}

function attach(video, stream) {
  if (video.srcObject !== stream) video.srcObject = stream;
  video.play?.().catch(() => { /* autoplay refused: the next user gesture starts it */ });
}

function showState(view, state) {
  view.state.dataset.state = state;
  view.state.className = `room-state rs-${state}`;
  view.state.textContent = t(`room.state.${state}`);
  document.body.dataset.room = state;
}

function showQuality(view, q) {
  if (!q) {
    view.quality.textContent = t("room.quality_none");
    delete view.quality.dataset.level;
    return;
  }
  const level = q.rtt_ms === null ? "unknown" : q.rtt_ms > 400 || q.packets_lost > 50 ? "poor" : q.rtt_ms > 150 ? "fair" : "good";
  view.quality.dataset.level = level;
  view.quality.textContent = t("room.quality", {
    level: t(`room.level.${level}`), rtt: q.rtt_ms ?? "–", lost: q.packets_lost, fps: q.fps ?? "–"});
}

function showMode(view, q) {
  const name = (mode) => t(`room.mode.${mode || "unknown"}`);
  view.mode.dataset.sending = q?.sending || "";
  view.mode.dataset.receiving = q?.receiving || "";
  view.mode.textContent = q ? t("room.mode", {sending: name(q.sending), receiving: name(q.receiving)}) : "";
  view.writing.hidden = !(q && (q.sending === "text_only" || q.receiving === "text_only"));
}

/** One message per sender and id: a chat its sender sent again (its answer was lost) may be relayed again. */
function sameChat(a, b) {
  return a.id === b.id && String(a.from) === String(b.from);
}

/** Add ``message`` to the log unless it is there already; true when added. */
function addChat(chatLog, message) {
  if (chatLog.some((shown) => sameChat(shown, message))) return false;
  chatLog.push(message);
  return true;
}

function renderChat(view, chatLog) {
  fill(view.chat, chatLog.map((m) => h("li", {class: m.mine ? "mine" : "theirs", "data-chat-id": m.id || "", "data-state": m.state},
    h("span", {class: "who"}, m.mine ? t("room.you") : view.peerName || t("room.them")), " ",
    h("time", {class: "hint"}, localTime(m.at.toISOString())), " ",
    h("span", {class: "text"}, m.text),
    m.state === "stored" ? null : h("span", {class: "hint chat-state"}, " ", t(`room.chat_${m.state}`)))));
  view.chat.scrollTop = view.chat.scrollHeight;
}
