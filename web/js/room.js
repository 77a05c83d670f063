// A consult's video room: the signaling socket /ws/consults/{id} and one RTCPeerConnection to the other doctor.
//
// Negotiation follows the "perfect negotiation" pattern with the roles the server assigns per pair
// (welcome.peers[] / presence: polite, offerer). The offerer makes the first offer and the ICE restarts;
// the other side answers, asks for a restart with an ice_restart message, and may renegotiate later
// (an impolite side ignores a colliding offer, a polite one rolls back its own).
// A dropped socket does not touch the RTCPeerConnection: media keeps flowing while the socket rejoins, and
// a working connection is kept across a rejoin of either side (room_link.js afterRejoin); a connection whose
// ICE fails is restarted (restartIce towards a browser, a fresh connection towards aiortc, which has no ICE restart).
import {ApiError, api, getWebConfig, toLogin} from "./api.js";
import {ChatOutbox} from "./room_chat.js";
import {IceWatch, SocketWatch, afterRejoin} from "./room_link.js";
import {RoomQuality} from "./room_quality.js";

const BACKOFF_MS = [500, 1000, 2000, 3000, 5000];
const STATS_EVERY_MS = 1000;
// Close codes after which rejoining cannot help (consult over, not a member, malformed join).
const FINAL_CLOSES = new Set([1000, 4403, 4409, 4400]);
// 4401: a refused join token (reason token_rejected: ask for a new one), or the member's session ended
// (session_revoked / session_expired: sign in again, never rejoin).
const TOKEN_REJECTED = 4401;
const REPLACED = 4000;
// The join rides in the handshake (signaling/handshake_join.py): the welcome follows the upgrade, a round trip sooner.
const JOIN_PROTOCOL = "psc119.join";

/** @param {string} text @returns {string} base64url without padding, as a subprotocol may carry it */
function base64url(text) {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * const room = new VideoRoom(consultId, {onState, onLocalStream, onRemoteStream, onChat, onChatState, onQuality, onMode, onError});
 * await room.open({audioOnly});  room.setMuted(true); room.setCameraOff(true); await room.setAudioOnly(true);
 * room.sendChat("text"); room.close();
 *
 * onChat({id, from, text, mine, at, state}): a message of either side (the other's may come more than once: its
 *   sender's id names it); onChatState(id, state): "sending" | "stored" | "failed", of one of ours (room_chat.js)
 *
 * onState(state): "connecting" | "waiting" (no other doctor) | "negotiating" | "connected" | "reconnecting" | "ended"
 * onMode({sending, receiving, reason}): "video" | "audio_only" | "text_only" each way, as the link allows (room_quality.js)
 */
export class VideoRoom {
  constructor(consultId, handlers = {}) {
    this.consultId = consultId;
    this.handlers = handlers;
    this.join = null;  // {token, room_url, ice_servers}
    this.ws = null;
    this.me = null;  // from welcome: {user, role, generation}
    this.peer = null;  // the other doctor: {user, role, kind, generation, polite, offerer, present}
    this.pc = null;
    this.local = null;  // MediaStream
    this.remote = null;  // MediaStream
    this.muted = false;
    this.cameraOff = false;
    this.audioOnly = false;
    this.attempt = 0;
    this.timer = null;
    this.statsTimer = null;
    this.closed = false;
    this.state = "connecting";
    this.quality = null;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.answered = false;  // the non-offerer has applied a first offer on this pc
    this.dropped = null;  // the socket dropSocket() closed
    this.adapt = null;  // RoomQuality: what this page sends over its link
    /** @type {RTCIceTransportPolicy} */
    this.iceTransportPolicy = "all";
    this.watch = null;  // the heartbeat of the current socket
    this.outbox = new ChatOutbox((message) => this.send(message), (id, state) => this.handlers.onChatState?.(id, state));
  }

  /** Get a join token, the camera and microphone, and connect. */
  async open({audioOnly = false} = {}) {
    this.audioOnly = audioOnly;
    this.join = await api("POST", `/api/consults/${encodeURIComponent(this.consultId)}/join`);
    const media = (await getWebConfig()).media || {};
    this.iceTransportPolicy = media.ice_transport_policy === "relay" ? "relay" : "all";
    this.adapt = new RoomQuality(this, media, (q) => this.handlers.onMode?.(q));
    await this.startMedia();
    this.adapt.allowVideo(!this.audioOnly);
    this.connect();
    this.statsTimer = setInterval(() => this.sampleStats(), STATS_EVERY_MS);
  }

  async startMedia() {
    try {
      this.local = await navigator.mediaDevices.getUserMedia({audio: true, video: !this.audioOnly});
    } catch (err) {
      // No camera (or it is refused): carry on with the microphone only, or receive only.
      this.handlers.onError?.(err);
      try { this.local = await navigator.mediaDevices.getUserMedia({audio: true}); } catch { this.local = new MediaStream(); }
      this.audioOnly = this.local.getVideoTracks().length === 0;
    }
    this.applyTrackStates();
    this.handlers.onLocalStream?.(this.local);
  }

  // --- the signaling socket ---

  connect() {
    clearTimeout(this.timer);
    if (this.closed) return;
    this.setState(this.attempt ? "reconnecting" : "connecting");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    // keep: the member we still have a working connection with, so neither side renegotiates it.
    const keep = this.peer && this.pc?.connectionState === "connected" ? [this.peer.user] : [];
    const join = JSON.stringify({type: "join", token: this.join.token, kind: "browser", keep});
    const ws = new WebSocket(`${scheme}://${location.host}${this.join.room_url}`, [JOIN_PROTOCOL, `join.${base64url(join)}`]);
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (ws.protocol !== JOIN_PROTOCOL) ws.send(join);  // a server that read no join in the handshake
      this.watch = new SocketWatch(ws, (this.join.heartbeat_s || 4) * 1000, () => this.abandon(ws));
    });
    ws.addEventListener("message", (e) => {
      if (ws !== this.ws) return;
      this.watch?.heard();
      let message;
      try { message = JSON.parse(e.data); } catch { return; }
      this.receive(message).catch((err) => this.handlers.onError?.(err));
    });
    ws.addEventListener("close", (e) => this.socketClosed(ws, e.code, e.reason));
  }

  socketClosed(ws, code, reason) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.watch?.stop();
    if (this.closed || code === REPLACED) return;
    if (code === TOKEN_REJECTED && reason.startsWith("session_")) {
      this.end();
      toLogin(true);
      return;
    }
    // aiohttp answers a client's close with 1000, so a socket we dropped ourselves is never final.
    if (FINAL_CLOSES.has(code) && ws !== this.dropped) {
      this.end();
      return;
    }
    this.retry(code === TOKEN_REJECTED);
  }

  /** A silent socket (no FIN, no RST): give it up now and rejoin; the call itself goes on. */
  abandon(ws) {
    if (ws !== this.ws) return;
    this.dropped = ws;
    ws.close(4001, "silent");
    this.socketClosed(ws, 4001, "silent");
  }

  /** Rejoin after a backoff with the same token; a refused (expired) token is replaced first. */
  retry(newToken) {
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    this.setState("reconnecting");
    this.timer = setTimeout(async () => {
      if (newToken) {
        try {
          this.join = await api("POST", `/api/consults/${encodeURIComponent(this.consultId)}/join`);
        } catch (err) {
          this.handlers.onError?.(err);
          if (err instanceof ApiError && (err.status === 409 || err.status === 403)) this.end(); else this.retry(true);
          return;
        }
      }
      this.connect();
    }, delay);
  }

  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  async receive(message) {
    switch (message.type) {
      case "welcome": {
        this.attempt = 0;
        this.me = {user: message.user, role: message.role, generation: message.generation};
        this.iceServers = message.ice_servers || this.join.ice_servers || [];
        const other = (message.peers || []).find((p) => p.role !== "recorder");
        if (other) this.meet(other, other.resumed);
        else if (this.pc?.connectionState === "connected") this.setState("connected");  // the other rejoins later
        else { this.dropPeer(); this.setState("waiting"); }
        this.outbox.reconnected();
        break;
      }
      case "presence":
        if (message.role === "recorder") break;
        if (message.state === "joined") this.meet(message, message.resumed);
        else if (message.state === "reconnecting") { if (this.peer?.user === message.user) this.peer.reconnecting = true; }
        else if (this.peer && this.peer.user === message.user && this.peer.generation === message.generation) {
          this.peer.present = false;
          this.setState("waiting");
        }
        break;
      case "offer":
      case "answer":
        await this.onDescription({type: message.type, sdp: message.sdp});
        break;
      case "candidate":
        await this.onCandidate(message);
        break;
      case "ice_restart":
        if (this.pc && this.peer?.offerer) this.iceLost(this.pc);
        break;
      case "chat":
        this.handlers.onChat?.({id: message.id, from: message.from, text: message.text, mine: false, at: new Date(), state: "stored"});
        break;
      case "chat_stored":
        this.outbox.stored(message.id);
        break;
      case "quality":
        if (this.peer && String(message.from) === String(this.peer.user)) this.adapt?.remote(message);
        break;
      case "bye":
        if (this.peer) this.peer.present = false;
        this.setState("waiting");
        break;
      case "error":
        // A chat that is sent again shows as sending; any other error is said.
        if (!(message.chat && this.outbox.refused(message.chat, message.code))) this.handlers.onError?.(new Error(message.message || message.code));
        break;
      default:
        break;
    }
  }

  // --- the peer connection ---

  /** The other doctor is (again) in the room: keep a working connection, or negotiate anew. */
  meet(info, resumed) {
    const step = afterRejoin({
      hasLink: Boolean(this.pc) && this.peer?.user === info.user, connected: this.pc?.connectionState === "connected",
      sameGeneration: this.peer?.generation === info.generation, resumed: Boolean(resumed), offerer: info.offerer,
    });
    if (step === "keep") {
      this.peer = {...info, present: true};
      this.setState("connected");
      return;
    }
    this.startPeer(info);
    if (step === "ask") this.send({type: "ice_restart"});
  }

  /** ICE failed, or stayed disconnected: the offerer restarts it (a fresh connection towards aiortc), the other asks. */
  iceLost(pc) {
    if (pc !== this.pc || !this.peer) return;
    if (!this.peer.offerer) this.send({type: "ice_restart"});
    else if (this.peer.kind === "aiortc") this.startPeer(this.peer);
    else pc.restartIce();
  }

  startPeer(info) {
    this.dropPeer();
    this.peer = {...info, present: true};
    this.setState("negotiating");
    const pc = new RTCPeerConnection({iceServers: this.iceServers || [], iceTransportPolicy: this.iceTransportPolicy});
    this.pc = pc;
    this.adapt?.reset();
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.answered = false;
    this.remote = new MediaStream();
    this.handlers.onRemoteStream?.(this.remote);
    pc.ontrack = ({track}) => {
      if (pc !== this.pc) return;
      this.remote = new MediaStream([...this.remote.getTracks(), track]);
      this.handlers.onRemoteStream?.(this.remote);
    };
    pc.onicecandidate = ({candidate}) => {
      if (pc !== this.pc || !candidate || !candidate.candidate) return;
      const c = candidate.toJSON();
      const message = {type: "candidate", candidate: c.candidate, sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null};
      if (c.usernameFragment) message.usernameFragment = c.usernameFragment;
      this.send(message);
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      if (pc.connectionState === "connected") this.setState("connected");
      else if (pc.connectionState === "failed" || pc.connectionState === "disconnected") this.setState("reconnecting");
    };
    new IceWatch(pc, (lost) => this.iceLost(lost));
    pc.onnegotiationneeded = async () => {
      if (pc !== this.pc) return;
      // The offerer opens the negotiation; the other side renegotiates only once it has answered a first offer.
      if (!this.peer.offerer && !this.answered) return;
      try {
        this.makingOffer = true;
        await pc.setLocalDescription();
        if (pc === this.pc) this.send({type: "offer", sdp: pc.localDescription.sdp});
      } catch (err) {
        this.handlers.onError?.(err);
      } finally {
        this.makingOffer = false;
      }
    };
    if (this.peer.offerer) {
      for (const kind of ["audio", "video"]) {
        const track = this.track(kind);
        pc.addTransceiver(track || kind, {direction: "sendrecv", streams: [this.local]});
      }
    }
  }

  dropPeer() {
    if (this.pc) {
      this.pc.close();
      this.pc = null;
    }
    this.peer = null;
    if (this.remote) for (const track of this.remote.getTracks()) track.stop();
  }

  track(kind) {
    return (kind === "audio" ? this.local?.getAudioTracks() : this.local?.getVideoTracks())?.[0] || null;
  }

  async onDescription(description) {
    const pc = this.pc;
    if (!pc) return;
    const collision = description.type === "offer" && (this.makingOffer || pc.signalingState !== "stable");
    this.ignoreOffer = !this.peer.polite && collision;
    if (this.ignoreOffer) return;
    if (description.type === "answer" && pc.signalingState !== "have-local-offer") return;  // stale
    await pc.setRemoteDescription(description);  // a polite side rolls back its own offer implicitly
    if (description.type !== "offer" || pc !== this.pc) return;
    if (!this.answered && !this.peer.offerer) {
      // Send our camera and microphone on the transceivers the offer created.
      for (const transceiver of pc.getTransceivers()) {
        const kind = transceiver.receiver.track?.kind;
        if (!kind || transceiver.currentDirection === "stopped") continue;
        transceiver.direction = "sendrecv";
        await transceiver.sender.replaceTrack(this.track(kind));
        if (this.local && transceiver.sender.setStreams) transceiver.sender.setStreams(this.local);
      }
    }
    await pc.setLocalDescription();
    this.answered = true;
    if (pc === this.pc) this.send({type: "answer", sdp: pc.localDescription.sdp});
  }

  async onCandidate(message) {
    if (!this.pc) return;
    const init = {candidate: message.candidate, sdpMid: message.sdpMid, sdpMLineIndex: message.sdpMLineIndex};
    if (message.usernameFragment) init.usernameFragment = message.usernameFragment;
    try {
      await this.pc.addIceCandidate(init);
    } catch (err) {
      // A candidate of an ignored offer, or of a connection replaced since: harmless.
      if (!this.ignoreOffer) console.debug("candidate not applied", err);
    }
  }

  // --- controls ---

  setMuted(muted) {
    this.muted = muted;
    this.applyTrackStates();
  }

  setCameraOff(off) {
    this.cameraOff = off;
    this.applyTrackStates();
  }

  applyTrackStates() {
    for (const track of this.local?.getAudioTracks() || []) track.enabled = !this.muted;
    for (const track of this.local?.getVideoTracks() || []) track.enabled = !this.cameraOff;
  }

  /** Audio only: stop the camera (bandwidth), or start it again; the video transceiver stays, so no renegotiation. */
  async setAudioOnly(on) {
    this.audioOnly = on;
    this.adapt?.allowVideo(!on);
    if (on) {
      for (const track of this.local.getVideoTracks()) {
        track.stop();
        this.local.removeTrack(track);
      }
    } else if (!this.track("video")) {
      const camera = await navigator.mediaDevices.getUserMedia({video: true});
      this.local.addTrack(camera.getVideoTracks()[0]);
      this.applyTrackStates();
    }
    const sender = this.pc?.getTransceivers().find((t) => t.receiver.track?.kind === "video")?.sender;
    if (sender) await sender.replaceTrack(this.track("video"));
    this.handlers.onLocalStream?.(this.local);
  }

  /** Send a chat, and again until it is answered as stored (room_chat.js); false when not connected. */
  sendChat(text) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    const id = this.outbox.add(text);
    this.handlers.onChat?.({id, from: this.me?.user, text, mine: true, at: new Date(), state: "sending"});
    return true;
  }

  /** Test hook and "network glitch": drop the signaling socket; the room rejoins by itself. */
  dropSocket() {
    if (!this.ws) return;
    this.dropped = this.ws;
    this.ws.close(4001, "dropped");
  }

  /** Round-trip time, packets lost and frames per second of the connection, from getStats(). */
  async sampleStats() {
    const pc = this.pc;
    if (pc && this.adapt) await this.adapt.step(pc);  // also while disconnected: a silent link means writing
    if (!pc || pc.connectionState !== "connected") {
      this.quality = null;
      this.handlers.onQuality?.(null);
      return;
    }
    const report = await pc.getStats();
    const q = {rtt_ms: null, packets_lost: 0, fps: null, frames_decoded: 0, frames_sent: 0};
    report.forEach((s) => {
      if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" && s.currentRoundTripTime !== undefined) {
        q.rtt_ms = Math.round(s.currentRoundTripTime * 1000);
      } else if (s.type === "inbound-rtp") {
        q.packets_lost += Math.max(0, s.packetsLost || 0);
        if (s.kind === "video") {
          q.fps = s.framesPerSecond ?? q.fps;
          q.frames_decoded = s.framesDecoded || 0;
        }
      } else if (s.type === "outbound-rtp" && s.kind === "video") {
        q.frames_sent = s.framesSent || 0;
      }
    });
    if (pc !== this.pc) return;
    this.quality = q;
    this.handlers.onQuality?.(q);
  }

  setState(state) {
    if (this.state === "ended") return;
    this.state = state;
    this.handlers.onState?.(state);
  }

  end() {
    this.setState("ended");
    this.close();
  }

  /** Hang up: say bye, close the connection, release the camera. */
  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.statsTimer);
    this.watch?.stop();
    this.outbox.stop();
    if (this.ws) {
      this.send({type: "bye"});
      this.ws.close(1000);
      this.ws = null;
    }
    this.dropPeer();
    for (const track of this.local?.getTracks() || []) track.stop();
    this.state = "ended";
    this.handlers.onState?.("ended");
  }
}
