// How a consult page's sending adapts to its link: the browser half of signaling/bandwidth.py.
//
// Chromium's own congestion control follows the link's bitrate; this adds what it does not do by itself:
// - a cap (media.max_bitrate) and a smaller picture when little gets through (RTCRtpSender.setParameters:
//   maxBitrate, scaleResolutionDownBy from the candidate pair's availableOutgoingBitrate);
// - audio only when the other side decodes fewer than media.min_fps frames a second (it says so in its "quality"
//   messages) and well below what we encode (a slow CPU is not a bad link), or the link carries less than the
//   smallest video, and video again after a calm while (5 s, doubling
//   after each failed try up to 40 s);
// - "text_only" when not even audio arrives or gets through (each receiver report counted once): the page offers to continue the consult in writing
//   (chat and attachments are stored by the server and reach the other doctor whatever the media link does).
// Every 2 s, and at each change, the other side is told the mode we send and the frames a second we decode from it.

const BITS_PER_PIXEL = 0.1;
const SCALES = [1, 2, 4, 8];
const MIN_SIDE = 40;
const MIN_VIDEO_BITRATE = 50000;
const AUDIO_BITRATE = 50000;  // Opus and its packet overhead, what video must leave to the voice
const GRACE_S = 4;
const PROBE_S = 5;
const PROBE_MAX_S = 40;
const STEADY_S = 20;
const SILENCE_S = 6;
const TEXT_LOSS = 0.25;
const DELIVERED = 0.7;  // share of our encoded frames the other side decodes on a link that carries them
const REPORT_EVERY_S = 2;

/** By how much to divide width and height so `bitrate` fills the picture (signaling.bandwidth.scale_for). */
export function scaleFor(bitrate, width, height, fps) {
  let best = 1;
  for (const scale of SCALES) {
    if (Math.min(width, height) / scale < MIN_SIDE) break;
    best = scale;
    if (bitrate >= BITS_PER_PIXEL * fps * (width / scale) * (height / scale)) return scale;
  }
  return best;
}

export class RoomQuality {
  /** @param {{send: (m: object) => boolean, peer: {user: string}|null}} room  @param {{max_bitrate?: number, min_fps?: number}} media
   *  @param {(q: {sending: string, receiving: string|null, reason: string}) => void} onChange */
  constructor(room, media, onChange) {
    this.room = room;
    this.maxBitrate = media.max_bitrate || 1500000;
    this.minFps = media.min_fps || 10;
    this.onChange = onChange;
    this.videoAllowed = true;
    this.reset();
  }

  /** A new connection: start again in video (or audio only if the page chose it). */
  reset() {
    const now = performance.now() / 1000;
    this.sending = this.videoAllowed ? "video" : "audio_only";
    this.receiving = null;
    this.reason = "";
    this.remoteFps = null;
    this.lowSince = null;
    this.videoSince = now;
    this.probeWait = PROBE_S;
    this.probeAt = now + PROBE_S;
    this.heard = {packets: 0, at: now};
    this.frames = {count: 0, at: now};
    this.encoded = {count: 0, at: now, fps: null};
    this.audioReport = null;  // the last audio receiver report counted
    this.lossy = 0;
    this.thin = 0;
    this.available = null;
    this.reportedAt = 0;
    this.applied = "";
    this.connected = false;  // nothing is judged before the connection first connects
  }

  /** The user chose audio only (or video again): no probing while it holds. */
  allowVideo(on) {
    this.videoAllowed = on;
    if (!on && this.sending === "video") this.change("audio_only", "chosen");
  }

  /** A "quality" message from the other side. */
  remote(message) {
    if (message.fps !== undefined && message.fps !== null) this.remoteFps = message.fps;
    if (message.mode !== this.receiving) {
      this.receiving = message.mode;
      this.onChange(this.state());
    }
  }

  state() {
    return {sending: this.sending, receiving: this.receiving, reason: this.reason};
  }

  change(mode, reason) {
    const now = performance.now() / 1000;
    if (this.sending === "video" && now - this.videoSince < STEADY_S) this.probeWait = Math.min(PROBE_MAX_S, this.probeWait * 2);
    if (mode !== "video") this.probeAt = now + this.probeWait;
    if (mode === "video") this.videoSince = now;
    this.sending = mode;
    this.reason = reason;
    this.lowSince = null;
    this.onChange(this.state());
    this.report(null);
  }

  report(fps) {
    this.reportedAt = performance.now() / 1000;
    const message = {type: "quality", mode: this.sending};
    if (this.room.peer) message.to = this.room.peer.user;  // not the recorder
    if (fps !== null) message.fps = Math.round(fps * 10) / 10;
    this.room.send(message);
  }

  /** One look at the connection (once a second). */
  async step(pc) {
    const now = performance.now() / 1000;
    if (!this.connected) {
      if (pc.connectionState !== "connected") return;
      this.connected = true;
      this.heard.at = now;
      this.videoSince = now;
      this.probeAt = now + this.probeWait;
    }
    const s = {available: null, videoLoss: 0, audioLoss: null, audioReport: null, audioPackets: 0, framesDecoded: 0, framesEncoded: null};
    (await pc.getStats()).forEach((r) => {
      if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded" && r.availableOutgoingBitrate !== undefined) {
        s.available = r.availableOutgoingBitrate;
      } else if (r.type === "remote-inbound-rtp") {
        if (r.kind === "audio") {
          s.audioLoss = r.fractionLost ?? 0;
          s.audioReport = r.reportsReceived ?? r.timestamp;
        } else s.videoLoss = r.fractionLost ?? 0;
      } else if (r.type === "inbound-rtp") {
        if (r.kind === "audio") s.audioPackets = r.packetsReceived || 0; else s.framesDecoded = r.framesDecoded || 0;
      } else if (r.type === "outbound-rtp" && r.kind === "video") {
        s.framesEncoded = r.framesEncoded || 0;
      }
    });
    this.available = s.available;
    const fps = (s.framesDecoded - this.frames.count) / Math.max(now - this.frames.at, 0.001);
    this.frames = {count: s.framesDecoded, at: now};
    if (s.audioPackets > this.heard.packets) this.heard = {packets: s.audioPackets, at: now};
    if (s.framesEncoded !== null) {
      this.encoded = {count: s.framesEncoded, at: now, fps: (s.framesEncoded - this.encoded.count) / Math.max(now - this.encoded.at, 0.001)};
    }
    if (s.audioReport !== null && s.audioReport !== this.audioReport) {  // a report read again is not more loss
      this.audioReport = s.audioReport;
      this.lossy = s.audioLoss > TEXT_LOSS ? this.lossy + 1 : 0;
    }
    this.decide(now, s);
    await this.apply(pc);
    if (now - this.reportedAt >= REPORT_EVERY_S) this.report(Math.max(0, fps));
  }

  decide(now, s) {
    const silent = now - this.heard.at > SILENCE_S;
    if (silent || (this.sending !== "video" && this.lossy >= 2)) {
      if (this.sending !== "text_only") this.change("text_only", silent ? "nothing heard" : "audio loss");
      return;
    }
    if (this.sending === "text_only") {
      if (!this.lossy) this.change("audio_only", "the link answers again");
      return;
    }
    if (this.sending === "audio_only") {
      if (this.videoAllowed && now >= this.probeAt && (s.audioLoss ?? 0) <= 0.1) this.change("video", "probing video");
      return;
    }
    this.thin = s.available !== null && s.available < MIN_VIDEO_BITRATE + AUDIO_BITRATE ? this.thin + 1 : 0;
    const sent = this.encoded.fps;
    const low = this.remoteFps !== null && this.remoteFps < this.minFps && (sent === null || this.remoteFps < DELIVERED * sent) &&
      now - this.videoSince >= GRACE_S;
    if (!low) this.lowSince = null; else this.lowSince ??= now;
    if (this.thin >= 3) this.change("audio_only", "the link carries too little");
    else if (this.lowSince !== null && now - this.lowSince >= GRACE_S) this.change("audio_only", `the other side decodes ${this.remoteFps} frames/s`);
  }

  /** The video sender's encoding: off unless in video, capped, and scaled to what the link carries. */
  async apply(pc) {
    const sender = pc.getSenders().find((x) => x.track?.kind === "video");
    if (!sender) return;
    const settings = sender.track.getSettings();
    const bitrate = Math.max(MIN_VIDEO_BITRATE, Math.min(this.maxBitrate, (this.available ?? this.maxBitrate) - AUDIO_BITRATE));
    const scale = scaleFor(bitrate, settings.width || 640, settings.height || 480, settings.frameRate || 30);
    const wanted = `${this.sending}/${scale}`;
    if (wanted === this.applied) return;
    const params = sender.getParameters();
    if (!params.encodings?.length) return;
    params.encodings[0].active = this.sending === "video";
    params.encodings[0].maxBitrate = this.maxBitrate;
    params.encodings[0].scaleResolutionDownBy = scale;
    await sender.setParameters(params);
    this.applied = wanted;
    this.scale = scale;
  }
}
